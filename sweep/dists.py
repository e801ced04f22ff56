"""W&B's sweep distributions that Optuna has no distribution for, as a value the study can
draw plus a map to the flag's value. Pure and stdlib only: spec, search and convert read it.

A flag with a ``Dist`` is a float range (or an integer range for an index) over the
*underlying* value Optuna samples and records as the study's param, and ``value`` maps it to
what the trial gets. W&B's own sampler works the same way (wandb/sweeps ``params.py``: every
draw is ``ppf(uniform(0, 1))``), so under random search each distribution is exactly W&B's:

- ``normal``/``log_normal``/``beta`` (and their ``q_`` forms) and
  ``categorical_w_probabilities``: the underlying value is a percentile u in [0, 1), mapped
  through the inverse CDF. TPE models u, which is honest: its prior over u is uniform, which
  is the distribution's own prior over the value.
- ``log_uniform``/``inv_log_uniform`` (min and max are natural-log exponents) and
  ``inv_log_uniform_values``: the underlying value is the exponent, mapped by ``exp``.
- ``q_uniform``/``q_log_uniform``/``q_log_uniform_values``: the unquantized value, rounded
  to a multiple of q. An integer q gives integers (W&B: ``isinstance(q, int)``).
- ``categorical`` here only for a list Optuna cannot hold (a value that is a list or a
  mapping, or a value listed twice): the underlying value is the index.

The beta inverse CDF solves the regularized incomplete beta function (a continued fraction)
for u, by safeguarded Newton steps: it maps the study's own draw, so a resumed sweep and TPE
see the same u. Sampling beta from a seeded generator instead would leave TPE nothing to model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweep.spec import Flag

# The percentile's open interval: the inverse CDF of a normal is infinite at 0 and 1.
EDGE = 2.0**-53
PERCENTILE = ("normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta",
              "categorical_w_probabilities")
EXPONENT = ("log_uniform", "q_log_uniform", "inv_log_uniform", "inv_log_uniform_values")
QUANTIZED = ("q_uniform", "q_log_uniform", "q_log_uniform_values", "q_normal", "q_log_normal", "q_beta")


@dataclass(frozen=True)
class Dist:
    """A W&B distribution with its parameters (W&B's defaults). ``q`` keeps its YAML type:
    an int gives integer values."""

    name: str
    q: int | float = 1.0
    mu: float = 0.0
    sigma: float = 1.0
    a: float = 1.0
    b: float = 1.0
    probabilities: tuple[float, ...] = ()
    low: float = 0.0  # the distribution's own min and max, as written (for describe/convert)
    high: float = 0.0


def underlying(dist: Dist) -> tuple[float, float, bool]:
    """The range Optuna samples for ``dist``: (low, high, log)."""
    if dist.name in PERCENTILE:
        return 0.0, 1.0, False
    if dist.name == "inv_log_uniform_values":  # log(1/X) uniform on [log(1/max), log(1/min)]
        return -math.log(dist.high), -math.log(dist.low), False
    return dist.low, dist.high, dist.name == "q_log_uniform_values"


def value(flag: Flag, u: Any) -> Any:
    """The flag's value for the study's underlying value ``u``."""
    dist = flag.dist
    if dist is None:
        return u
    name = dist.name
    if name == "categorical":
        return flag.values[int(u)]
    if name in PERCENTILE:
        u = min(max(float(u), EDGE), 1.0 - EDGE)
    if name == "categorical_w_probabilities":
        return flag.values[pick(dist.probabilities, u)]
    if name in ("log_uniform", "q_log_uniform"):
        x = math.exp(u)
    elif name in ("inv_log_uniform", "inv_log_uniform_values"):
        x = math.exp(-u)
    elif name in ("normal", "q_normal"):
        x = NormalDist(dist.mu, dist.sigma).inv_cdf(u) if dist.sigma > 0 else dist.mu
    elif name in ("log_normal", "q_log_normal"):
        x = math.exp(NormalDist(dist.mu, dist.sigma).inv_cdf(u) if dist.sigma > 0 else dist.mu)
    elif name in ("beta", "q_beta"):
        x = beta_ppf(u, dist.a, dist.b)
    else:  # q_uniform, q_log_uniform_values: u is the value itself
        x = float(u)
    return quantize(x, dist.q) if name in QUANTIZED else x


def quantize(x: float, q: int | float) -> int | float:
    """``round(x / q) * q`` as W&B computes it (numpy's round: halves to even, as Python's),
    an int when q is one."""
    out = round(x / q) * q
    return int(out) if isinstance(q, int) and not isinstance(q, bool) else float(out)


def pick(probabilities: tuple[float, ...], u: float) -> int:
    """The index whose slice of [0, 1) holds ``u``: value i with probability p[i]."""
    total = 0.0
    scale = sum(probabilities)
    for i, p in enumerate(probabilities):
        total += p / scale
        if u < total:
            return i
    return max(i for i, p in enumerate(probabilities) if p > 0)  # u just under 1, rounding


def beta_ppf(u: float, a: float, b: float) -> float:
    """The inverse CDF of Beta(a, b) at ``u``: Newton's steps on the incomplete beta function,
    kept inside a bisection bracket (a step that leaves it bisects instead)."""
    lo, hi = 0.0, 1.0
    x = a / (a + b)
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    for _ in range(200):
        f = betainc(a, b, x) - u
        if f == 0:
            return x
        lo, hi = (x, hi) if f < 0 else (lo, x)
        density = math.exp(log_norm + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x))
        step = x - f / density if density > 0 else -1.0
        nxt = step if lo < step < hi else (lo + hi) / 2
        if abs(nxt - x) < 1e-15 or hi - lo < 1e-15:
            return nxt
        x = nxt
    return x


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (Numerical Recipes' continued
    fraction, on whichever side of the mean converges fast)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for aa in (m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def describe(dist: Dist) -> str:
    """The distribution in words (the sweep record's space, so a resume sees a change)."""
    parts = [dist.name]
    if dist.name in PERCENTILE:
        if dist.name == "categorical_w_probabilities":
            parts.append(f"p={list(dist.probabilities)!r}")
        elif "beta" in dist.name:
            parts.append(f"a={dist.a!r} b={dist.b!r}")
        else:
            parts.append(f"mu={dist.mu!r} sigma={dist.sigma!r}")
    elif dist.name != "categorical":
        parts.append(f"{dist.low!r}..{dist.high!r}")
    if dist.name in QUANTIZED:
        parts.append(f"q={dist.q!r}")
    return " ".join(parts)
