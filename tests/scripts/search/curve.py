"""A learning curve for the search tests: stdlib only, so a spawned trial starts fast.

Accuracy rises with the epoch towards a ceiling set by ``x`` alone (best at x = 0.3; ``y``
is ignored). ``report`` picks how it is reported: ``log`` (sweep.log with a step) or
``print`` (``epoch N: eval_accuracy=V`` on stdout). ``polite`` asks ``sweep.should_stop()``
each epoch and exits 0 when told to. ``child`` starts a sleeping child process (a stand-in
for a data-loader worker). The pids of the trial and its child go to ``pids.txt`` in the
trial's working directory, so a test can check they are gone.
"""

import math
import os
import subprocess
import sys
import time

import sweep

f = sweep.flags(x=0.5, y=0.5, epochs=12, sleep=0.02, report="log", polite=False, child=False)
child = None
if f.child:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open("pids.txt", "w") as fh:
    fh.write(" ".join(str(p) for p in (os.getpid(), child and child.pid) if p))


def finish():
    if child is not None:  # a trial that ends on its own takes its child along
        child.kill()
        child.wait()
    sys.exit(0)


ceiling = 1 - (f.x - 0.3) ** 2
for step in range(f.epochs):
    if f.polite and sweep.should_stop():
        print(f"stopping cleanly before step {step}", flush=True)
        finish()
    accuracy = ceiling * (1 - math.exp(-(step + 1) / 3))
    if f.report == "log":
        sweep.log(step=step, eval_accuracy=accuracy, train_loss=1 - accuracy)
    else:
        print(f"epoch {step}: eval_accuracy={accuracy}", flush=True)
    time.sleep(f.sleep)
print("done")
finish()
