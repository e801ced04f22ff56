"""Part (b) of bench/search_bench.py: a score that only ``x`` drives (``y`` is read and
ignored), best at ``x = $SEARCH_XY_OPTIMUM`` (0.37 by default). Stdlib only."""

import os

import sweep

f = sweep.flags(x=0.5, y=0.5)
optimum = float(os.environ.get("SEARCH_XY_OPTIMUM", "0.37"))
sweep.log(step=0, score=1 - (f.x - optimum) ** 2)
