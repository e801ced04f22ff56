"""Steps Optuna would refuse: a negative one, and every step reported twice (logged and
printed). Stdlib only. ``constant`` makes every trial score the same."""

import sweep

f = sweep.flags(x=0.5, y=0.5, constant=False)
sweep.log(step=-1, eval_accuracy=0.0)
for step in range(4):
    value = 0.5 if f.constant else f.x * (step + 1) / 4
    sweep.log(step=step, eval_accuracy=value)
    print(f"epoch {step}: eval_accuracy={value}", flush=True)
