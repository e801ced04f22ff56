"""The report's figures as plain plotly.js figure dicts (``{"data": [...], "layout": {...}}``).

Built straight as JSON-ready dicts, not through plotly's Python objects: 10,000 runs must be
drawn in seconds, and validating every point through plotly.py costs more than the page is
worth. Optuna's own figures (slice, contour) are used where they fit, on a bounded sample of
the study. Every value is finite or None here: JSON has no NaN, and plotly skips a None.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweep import board
from sweep.diagnosis import Diagnosis

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

Figure = dict[str, Any]
Series = list[tuple[int, float]]

BEST = "#d62728"
OTHERS = "#7f7f7f"
GOOD, BAD = "#2ca02c", "#d62728"
LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "height": 380, "template": None,
          "font": {"size": 12}}


def finite(value: Any) -> float | None:
    """A number plotly can draw, or None (a gap) for NaN, inf, text and missing values."""
    if board.is_number(value) and math.isfinite(value):
        return float(value)
    return None


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {**LAYOUT, "title": {"text": title}, **extra}


# ---------------------------------------------------------------- parallel coordinates


@dataclass(frozen=True)
class Axis:
    """One flag's axis: ``log`` for a log range, ``categories`` for a list of values."""

    name: str
    log: bool = False
    categories: tuple[Any, ...] | None = None


def axes(flags: Sequence[str], space: dict[str, BaseDistribution] | None,
         values: dict[str, list[Any]]) -> list[Axis]:
    """Each searched flag's axis, from the flags file's search space when it is known; else
    numbers are a linear axis and anything else categories."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = []
    for name in flags:
        dist = (space or {}).get(name)
        if isinstance(dist, CategoricalDistribution):
            out.append(Axis(name, categories=tuple(dist.choices)))
        elif isinstance(dist, (FloatDistribution, IntDistribution)):
            out.append(Axis(name, log=dist.log))
        elif all(v is None or board.is_number(v) for v in values[name]):
            out.append(Axis(name))
        else:
            seen = dict.fromkeys(board.cell(v) for v in values[name] if v is not None)
            out.append(Axis(name, categories=tuple(seen)))
    return out


def _dimension(axis: Axis, column: list[Any]) -> dict[str, Any]:
    if axis.categories is not None:
        labels = [board.cell(c) for c in axis.categories]
        index = {label: i for i, label in enumerate(labels)}
        return {"label": axis.name, "values": [index.get(board.cell(v)) for v in column],
                "tickvals": list(range(len(labels))), "ticktext": labels}
    if axis.log:
        # parcoords has no log axis: draw log10 of the value, and label the ticks in real values
        logs = [math.log10(v) if v is not None and v > 0 else None for v in map(finite, column)]
        drawn = [v for v in logs if v is not None]
        lo, hi = (math.floor(min(drawn)), math.ceil(max(drawn))) if drawn else (0, 1)
        ticks = list(range(lo, hi + 1))
        return {"label": f"{axis.name} (log)", "values": logs, "tickvals": ticks,
                "ticktext": [f"{10.0 ** t:g}" for t in ticks]}
    return {"label": axis.name, "values": [finite(v) for v in column]}


def parallel(rows: list[dict[str, Any]], flag_axes: list[Axis], metric: str) -> Figure:
    """One line per run through its flags and its objective; each axis can be brushed."""
    dims = [_dimension(a, [r.get(f"flag_{a.name}") for r in rows]) for a in flag_axes]
    objective = [finite(r.get(metric)) for r in rows]
    dims.append({"label": metric, "values": objective})
    trace = {"type": "parcoords", "dimensions": dims,
             "line": {"color": [v if v is not None else 0 for v in objective], "colorscale": "Viridis",
                      "showscale": True}}
    return {"data": [trace], "layout": _layout(f"Flags and {metric} ({len(rows)} runs)", height=420)}


# ---------------------------------------------------------------- learning curves


@dataclass(frozen=True)
class CurveRun:
    run_id: str
    status: str
    points: Series
    best: bool = False


def learning_curves(curves: list[CurveRun], metric: str) -> Figure:
    """The objective per step for the top runs: the best thick, pruned runs dashed and ending
    in a cross where they were stopped."""
    traces: list[dict[str, Any]] = []
    for c in curves:
        pruned = c.status == "pruned"
        steps = [s for s, _ in c.points]
        values = [finite(v) for _, v in c.points]
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"{c.run_id}{' (best)' if c.best else ''}"
                                                       f"{' (pruned)' if pruned else ''}",
            "x": steps, "y": values,
            "line": {"width": 4 if c.best else 1.5, "dash": "dash" if pruned else "solid",
                     **({"color": BEST} if c.best else {})},
        })
        if pruned and c.points:
            traces.append({"type": "scatter", "mode": "markers", "showlegend": False, "x": steps[-1:],
                           "y": values[-1:], "marker": {"symbol": "x", "size": 11, "color": OTHERS},
                           "hovertext": [f"{c.run_id} pruned here"], "name": "pruned"})
    return {"data": traces, "layout": _layout(f"{metric} per step, top runs", xaxis={"title": {"text": "step"}},
                                              yaxis={"title": {"text": metric}})}


def train_dev(run_id: str, pairs: list[tuple[str, Series, str, Series]]) -> Figure:
    """The best run's train and dev series side by side, per pair logged."""
    traces = []
    for train_key, train, dev_key, dev in pairs:
        for key, series, dash in ((train_key, train, "dot"), (dev_key, dev, "solid")):
            if series:
                traces.append({"type": "scatter", "mode": "lines", "name": key, "x": [s for s, _ in series],
                               "y": [finite(v) for _, v in series], "line": {"dash": dash}})
    return {"data": traces, "layout": _layout(f"Train against dev, best run {run_id}",
                                              xaxis={"title": {"text": "step"}})}


# ---------------------------------------------------------------- importance and correlation


def correlation(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's r, or None when either side does not vary."""
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def flag_correlation(rows: list[dict[str, Any]], axis: Axis, metric: str) -> float | None:
    """How the objective moves with a numeric flag (on a log scale for a log range); None for
    categories, which have no order."""
    if axis.categories is not None and not all(board.is_number(c) for c in axis.categories):
        return None
    xs, ys = [], []
    for row in rows:
        x, y = finite(row.get(f"flag_{axis.name}")), finite(row.get(metric))
        if x is None or y is None or (axis.log and x <= 0):
            continue
        xs.append(math.log10(x) if axis.log else x)
        ys.append(y)
    return correlation(xs, ys)


def importance(scores: dict[str, float], signs: dict[str, float | None], metric: str, note: str) -> Figure:
    """fANOVA importance per flag, each bar coloured by the sign of the flag's correlation with
    the objective (grey: a category, no sign)."""
    names = list(reversed(scores))  # most important at the top of a horizontal bar chart
    colours, labels = [], []
    for name in names:
        r = signs.get(name)
        colours.append(OTHERS if r is None else GOOD if r > 0 else BAD)
        labels.append("categories" if r is None else f"{'+' if r > 0 else '−'} r={r:.2f}")
    trace = {"type": "bar", "orientation": "h", "y": names, "x": [round(scores[n], 4) for n in names],
             "marker": {"color": colours}, "text": labels, "textposition": "auto",
             "hovertemplate": "%{y}: importance %{x}, %{text}<extra></extra>"}
    return {"data": [trace], "layout": _layout(f"Flag importance (fANOVA) and correlation with {metric}{note}",
                                               xaxis={"title": {"text": "importance"}},
                                               height=max(240, 60 + 40 * len(names)))}


def optuna_figure(fig: Any) -> Figure:
    """An Optuna (plotly.py) figure as a plain dict, numpy arrays and all."""
    import plotly.io

    data: Figure = json.loads(plotly.io.to_json(fig, validate=False))
    data.get("layout", {}).pop("template", None)  # the default template weighs more than a small figure
    return data


def slices(study: optuna.Study, params: list[str]) -> Figure:
    """The objective against each flag, one panel per flag sharing the objective's axis, each
    run a point coloured by its trial number: Optuna's slice plot, built straight as a dict
    (through plotly.py it took longer than the rest of the figures together)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    trials = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    n, traces = len(params), []
    layout = _layout("Slice plot", yaxis={"title": {"text": "Objective Value"}})
    for i, name in enumerate(params):
        axis = "x" if i == 0 else f"x{i + 1}"
        dist = next((t.distributions[name] for t in trials if name in t.distributions), None)
        shown = [t for t in trials if name in t.params]
        xs = [t.params[name] for t in shown]
        kind, order = "linear", {}
        if isinstance(dist, CategoricalDistribution):  # in the flags file's order, not the runs'
            kind, xs = "category", [board.cell(x) for x in xs]
            order = {"categoryorder": "array", "categoryarray": [board.cell(c) for c in dist.choices]}
        elif isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
            kind = "log"
        traces.append({"type": "scatter", "mode": "markers", "name": name, "showlegend": False,
                       "xaxis": axis, "yaxis": "y", "x": xs, "y": [finite(t.value) for t in shown],
                       "marker": {"color": [t.number for t in shown], "colorscale": "Blues",
                                  "line": {"width": 0.5, "color": "Grey"}, "showscale": i == n - 1,
                                  "colorbar": {"title": {"text": "Trial"}}}})
        layout[f"xaxis{'' if i == 0 else i + 1}"] = {
            "title": {"text": name}, "type": kind, "anchor": "y", **order,
            "domain": [i / n + (0.02 if i else 0), (i + 1) / n - (0.02 if i < n - 1 else 0)]}
    return {"data": traces, "layout": layout}


def contour(study: optuna.Study, params: list[str]) -> Figure:
    import optuna.visualization

    return optuna_figure(optuna.visualization.plot_contour(study, params=params))


# ---------------------------------------------------------------- bias and variance


def bias_variance(points: list[tuple[str, Diagnosis]], baseline: float, gap: float) -> Figure:
    """Each run at (train error, dev error), with the regions ``diagnose`` names: right of
    baseline + gap is high bias, above the line dev = train + gap high variance."""
    top = max([100.0, *(max(d.train_error, d.dev_error) for _, d in points)])
    bottom = min([0.0, *(min(d.train_error, d.dev_error) for _, d in points)])
    by_label: dict[str, list[tuple[str, Diagnosis]]] = {}
    for run_id, diag in points:
        by_label.setdefault(diag.label, []).append((run_id, diag))
    traces = [{"type": "scatter", "mode": "markers", "name": label,
               "x": [round(d.train_error, 4) for _, d in group], "y": [round(d.dev_error, 4) for _, d in group],
               "text": [run_id for run_id, _ in group],
               "hovertemplate": "%{text}<br>train error %{x}%<br>dev error %{y}%<extra>" + label + "</extra>"}
              for label, group in sorted(by_label.items())]
    edge = baseline + gap
    shapes = [
        {"type": "rect", "x0": edge, "x1": top, "y0": bottom, "y1": top, "fillcolor": "orange",
         "opacity": 0.12, "line": {"width": 0}, "layer": "below"},
        {"type": "path", "path": f"M {bottom},{bottom + gap} L {top - gap},{top} L {bottom},{top} Z",
         "fillcolor": "royalblue", "opacity": 0.12, "line": {"width": 0}, "layer": "below"},
        {"type": "line", "x0": bottom, "y0": bottom, "x1": top, "y1": top, "line": {"dash": "dot", "color": OTHERS}},
    ]
    notes = [{"x": (edge + top) / 2, "y": bottom + 2, "text": "high bias", "showarrow": False},
             {"x": bottom + 8, "y": top - 3, "text": "high variance", "showarrow": False}]
    return {"data": traces, "layout": _layout(
        f"Bias and variance ({len(points)} runs; baseline {baseline:g}%, gap {gap:g} points)", shapes=shapes,
        annotations=notes, xaxis={"title": {"text": "train error %"}, "range": [bottom, top]},
        yaxis={"title": {"text": "dev error %"}, "range": [bottom, top]})}
