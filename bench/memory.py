"""Memory: peak resident memory of the sweep process itself (not its trials) over 200 and
2,000 trivial trials, and over trials that each print 50 MB; and of the warm launcher's
server, which holds only what the trivial script imports (no torch).

    python bench/memory.py [--small 200] [--large 2000]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cores

TRIVIAL = "print('eval_accuracy: 0.5')\n"
FLOOD = ("import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(50 * 1024):\n    sys.stdout.write(line)\n"
         "print('eval_accuracy: 0.5')\n")


def hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak(script: str, trials: int, tmp: Path, name: str) -> tuple[float, float]:
    d = tmp / name
    d.mkdir()
    (d / "t.py").write_text(script)
    (d / "f.yaml").write_text(f"script: t.py\ntrials: {trials}\nflags:\n  x: {{min: 0.0, max: 1.0}}\n")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sweep", "run", str(d / "f.yaml"), "--runs-dir", str(d / "runs")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    high = server = 0.0
    while proc.poll() is None:
        high = max(high, hwm_mb(proc.pid) or 0.0)
        server = max([server, *(hwm_mb(pid) or 0.0 for pid in servers(proc.pid))])
        time.sleep(0.05)
    if proc.returncode != 0:
        sys.exit(f"{name}: sweep run exited {proc.returncode}")
    SERVER_PEAK[name] = server
    return high, time.perf_counter() - start


SERVER_PEAK: dict[str, float] = {}  # the warm launcher's server (the parent of every trial)


def servers(pid: int) -> list[int]:
    """The sweep's children that are a launcher's server."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(k) for k in fh.read().split()]
    except OSError:
        return []
    out = []
    for kid in kids:
        try:
            with open(f"/proc/{kid}/cmdline", "rb") as fh:
                if b"sweep.forkserver" in fh.read():
                    out.append(kid)
        except OSError:
            pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, t_small = peak(TRIVIAL, args.small, Path(tmp), "small")
        large, t_large = peak(TRIVIAL, args.large, Path(tmp), "large")
        flood, _ = peak(FLOOD, 3, Path(tmp), "flood")
    print(f"peak memory of the sweep process (VmHWM), {cores()} cores")
    print(f"{'trials':>8}{'peak MiB':>10}{'wall s':>9}{'ms/trial':>10}")
    print(f"{args.small:>8}{small:>10.1f}{t_small:>9.1f}{1000 * t_small / args.small:>10.1f}")
    print(f"{args.large:>8}{large:>10.1f}{t_large:>9.1f}{1000 * t_large / args.large:>10.1f}")
    print(f"growth {args.small} -> {args.large} trials: {large - small:+.1f} MiB ({large / small:.2f}x)")
    print(f"3 trials printing 50 MB each: peak {flood:.1f} MiB ({flood / small:.2f}x the trivial sweep)")
    print(f"the warm launcher's server for the trivial script (which imports nothing): "
          f"peak {SERVER_PEAK['small']:.1f} MiB")


if __name__ == "__main__":
    main()
