"""Bias and variance of a run from its final metrics (Ng's recipe for deep learning). Stdlib only."""

from __future__ import annotations

import math
from dataclasses import dataclass

# (train metric, dev metric, is an accuracy): the first pair a run reported is the one diagnosed.
PAIRS = (("train_accuracy", "eval_accuracy", True), ("train_error", "eval_error", False))
DEFAULT_GAP = 5.0


@dataclass(frozen=True)
class Diagnosis:
    """Bias and variance in percentage points of error."""

    train_error: float
    dev_error: float
    bias: float
    variance: float
    label: str

    def recipe(self) -> list[str]:
        tips = []
        if "bias" in self.label:
            tips.append("high bias: try a bigger network, train longer, or another architecture")
        if "variance" in self.label:
            tips.append("high variance: get more data, regularize more (raise dropout or lambda), "
                        "or try another architecture")
        if not tips:
            tips.append("good fit: bias and variance are both within the threshold")
        return tips


def _as_error(value: float, is_accuracy: bool) -> float:
    """Percent error from an accuracy or error given as a fraction (0..1) or a percentage."""
    percent = value * 100 if abs(value) <= 1 else value
    return 100 - percent if is_accuracy else percent


def diagnose(metrics: dict[str, float], baseline_error: float = 0.0,
             gap: float = DEFAULT_GAP) -> Diagnosis | None:
    for train_key, dev_key, is_accuracy in PAIRS:
        train, dev = metrics.get(train_key), metrics.get(dev_key)
        if train is None or dev is None or not (math.isfinite(train) and math.isfinite(dev)):
            continue
        train_err, dev_err = _as_error(train, is_accuracy), _as_error(dev, is_accuracy)
        bias = train_err - baseline_error
        variance = dev_err - train_err
        high = [name for name, part in (("high bias", bias), ("high variance", variance)) if part > gap]
        label = " + ".join(high) if high else "good fit"
        return Diagnosis(train_err, dev_err, bias, variance, label)
    return None
