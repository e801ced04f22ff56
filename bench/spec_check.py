"""The flags file's duplicate-value check on long lists: 10,000, 40,000 and 100,000 values.

"before" is the old check (each value compared with every value before it, kept here as the
reference); "after" is the one in sweep/spec.py (one set lookup per value). "load" is the whole
`spec.load` of a flags file with that list (YAML parsing included), "--set" the same list given
as `--set x=[...]`. The quadratic "before" is measured up to 40,000 values (a minute) and
extrapolated (n^2) beyond, unless --all.

    python bench/spec_check.py [--all]
"""

import sys
import tempfile
import time
from pathlib import Path

from common import cores

from sweep import spec


class Before(spec._Checker):
    def values(self, key, raw):
        values = tuple(self.scalar(f"{key}[{i}]", v) for i, v in enumerate(raw))
        seen = []
        for v in values:
            if any(type(v) is type(s) and v == s for s in seen):
                raise self.error(key, f"value {v!r} is listed twice")
            seen.append(v)
        return values


def best(repeat: int, fn, *args) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    measure_all = "--all" in sys.argv
    sizes = (10_000, 40_000, 100_000)
    print(f"duplicate-value check of n distinct values, {cores()} cores (seconds, best of 3; "
          "before: one run)")
    print(f"{'values':>8}{'before':>12}{'after':>9}{'speed-up':>10}{'load':>8}{'--set':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "train.py").write_text("print('eval_accuracy: 1')\n")
        for n in sizes:
            values = list(range(n))
            after = best(3, spec._Checker(Path("f.yaml")).values, "flags.x", values)
            if n <= 40_000 or measure_all:
                before, mark = best(1, Before(Path("f.yaml")).values, "flags.x", values), ""
                last = (n, before)
            else:
                before, mark = last[1] * (n / last[0]) ** 2, " est."
            path = Path(tmp) / f"flags{n}.yaml"
            path.write_text(f"script: train.py\nflags:\n  x: [{', '.join(map(str, values))}]\n")
            load = best(1, spec.load, path)
            base = spec.load(Path(tmp) / "flags10000.yaml")
            override = best(1, spec.override, base, f"x=[{', '.join(map(str, values))}]")
            print(f"{n:>8}{before:>8.2f}{mark:<4}{after:>9.3f}{before / after:>9.0f}x{load:>8.2f}{override:>8.2f}")


if __name__ == "__main__":
    main()
