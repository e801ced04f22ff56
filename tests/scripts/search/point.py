"""One evaluation of f(x) = 1 - (x - 0.3)^2, for sampler and importance tests: ``y`` and
``z`` are accepted and ignored. Stdlib only."""

import sweep

f = sweep.flags(x=0.5, y=0.5, z=0)
sweep.log(step=0, eval_accuracy=1 - (float(f.x) - 0.3) ** 2)
