"""What reading a script's argparse parser costs (``sweep.introspect.read``): once per sweep
that has true/false flags, and once per ``sweep init``. Best of 3, for a stdlib script and
for bench/tiny_mlp.py, which imports torch before it parses its arguments.

    python bench/introspect.py
"""

import time
from pathlib import Path

from common import ROOT, cores

from sweep import introspect

SCRIPTS = {
    "stdlib argparse script (tests/scripts/names/charlm.py)": ROOT / "tests" / "scripts" / "names" / "charlm.py",
    "torch script (bench/tiny_mlp.py)": Path(__file__).parent / "tiny_mlp.py",
}


def main() -> None:
    print(f"{cores()} cores")
    for label, script in SCRIPTS.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            parser = introspect.read(script)
            times.append(time.perf_counter() - start)
        print(f"{label}: {min(times):.2f} s ({len(parser.options)} options)")


if __name__ == "__main__":
    main()
