"""``sweep report``: one self-contained HTML file for one or more sweeps.

The page is plain HTML with plotly.js inlined (it opens with no network), one JSON block of
data, and a few lines of script that draw the figures and sort the leaderboard. Everything on
it comes from the data layer: ``board`` rows, ``report``'s views, ``rundir``'s history reader,
``diagnosis`` and ``importance``'s study. The file is written atomically.
"""

from __future__ import annotations

import html
import json
import math
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep import board, figures, importance, report, rundir, scoring
from sweep.diagnosis import DEFAULT_GAP, diagnose
from sweep.errors import SweepError, UsageError

EXTRA = "sweep report needs plotly, an optional extra: pip install 'sweep[report]'"
CURVE_RUNS = 10  # learning curves: the best runs, plus as many pruned ones at most
PRUNED_CURVES = 5
# Optuna's fANOVA takes seconds per hundred runs, and its slice and contour figures grow with
# every point: a large sweep is scored and sliced on a seeded random sample (said on the page).
FANOVA_SAMPLE = 100
PLOT_SAMPLE = 500
SPEC_TRIES = 5  # runs whose run.json is read for the flags file
IMPORTANCE_VIEWS = ("flag importance", "slice plots", "contour")


@dataclass
class Section:
    """One sweep: its summary, figures and notes (a figure that cannot be drawn says why)."""

    sweep: str
    metric: str
    goal: str
    kind: str = "sweep"  # or "study": a shared study
    summary: list[tuple[str, str]] = field(default_factory=list)
    plots: list[tuple[str, str, figures.Figure]] = field(default_factory=list)  # (id, name, figure)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (figure name, why it is missing)
    compare: report.CompareView | None = None
    pending: Pending | None = None  # the fANOVA scores, until they come back


@dataclass(frozen=True)
class Pending:
    """A sweep's fANOVA on its way: the study its slice and contour draw, the scorer's job, the
    correlation signs and sample note of the importance figure, and where in the plots they go."""

    study: Any
    job: int
    signs: dict[str, float | None]
    note: str
    at: int


@dataclass(frozen=True)
class Study:
    """A shared study (``--storage URL --study NAME``), reported in place of a runs directory."""

    storage: str
    name: str


@dataclass
class Page:
    title: str
    source: str  # where the runs came from, in words
    columns: list[str]
    rows: list[list[Any]]
    links: list[str]
    sections: list[Section]
    created: float = field(default_factory=time.time)


# ---------------------------------------------------------------- data


def build(source: Path | Study, refs: list[str], everything: bool, out: Path,
          baseline: float | None = None, gap: float = DEFAULT_GAP) -> Page:
    if isinstance(source, Path) and not source.is_dir():
        raise UsageError(f"runs directory {source} does not exist")
    with scoring.Scorer() as scorer:  # scikit-learn imports beside the reading of the runs
        if isinstance(source, Study):
            return _study_page(source, out, baseline, gap, scorer)
        return _runs_page(source, refs, everything, out, baseline, gap, scorer)


def _runs_page(runs_dir: Path, refs: list[str], everything: bool, out: Path, baseline: float | None, gap: float,
               scorer: scoring.Scorer) -> Page:
    from sweep import index

    runs = index.list_runs(runs_dir)
    if everything:
        newest: dict[str, float] = {}
        for run in runs:
            if run.sweep:
                newest[run.sweep] = max(newest.get(run.sweep, 0.0), run.start or 0.0)
        if not runs:
            raise SweepError(f"no runs in {runs_dir}")
        sweeps = sorted(newest, key=lambda s: (newest[s], s), reverse=True)
        chosen = runs
    else:
        sweeps = list(dict.fromkeys(rundir.find_sweep_id(runs_dir, ref, runs) for ref in refs or ["last"]))
        chosen = [r for r in runs if r.sweep in sweeps]
    full = board.pareto(board.build(chosen, runs_dir, baseline, gap))
    records = {r.id: r.flags_file for r in rundir.load_sweeps(runs_dir)}
    sections = [_section(s, [r for r in chosen if r.sweep == s], [r for r in full.rows if r["sweep"] == s],
                         records.get(s), baseline, gap, scorer) for s in sweeps]
    base = os.path.relpath(runs_dir.resolve(), out.resolve().parent)
    prefix = "" if base == "." else f"{base}/"
    title = f"sweep {sweeps[0]}" if len(sweeps) == 1 else f"{len(sweeps)} sweeps"
    return _page(title, f"Runs directory {runs_dir}", full, sections, lambda row: f"{prefix}{row['id']}", scorer)


def _study_page(study: Study, out: Path, baseline: float | None, gap: float, scorer: scoring.Scorer) -> Page:
    """A shared study, from its database: every worker's runs. Curves and the flags file come
    from the run directories that are on this machine; the page says how many those are."""
    from sweep import shared, urls

    urls.check_storage_url(study.storage)
    urls.check_driver(study.storage)
    runs = shared.list_runs(study.storage, study.name)
    if not runs:
        raise SweepError(f"study {study.name!r} has no trials yet")
    full = shared.leaderboard(runs, baseline, gap)
    here = {r.path.name for r in runs if _is_here(r)}
    flags_file = next((rundir.read_run(r.path).info.get("flags_file") for r in runs if r.path.name in here), None)
    try:  # the study records its space: no flags file needed, even with no run directory here
        known: dict[str, Any] | None = shared.space_of(shared.load(study.storage, study.name))
    except SweepError:
        known = None
    sec = _section(study.name, runs, full.rows, flags_file, baseline, gap, scorer, here, kind="study",
                   known_space=known)
    hosts = sorted({str(r.info.get("host")) for r in runs if r.path.name not in here and r.info.get("host")})
    elsewhere = f"; the others are on {', '.join(hosts)}" if hosts else ""
    sec.summary.append(("run directories", f"{len(here)} of {len(runs)} on this machine ({os.uname().nodename})"
                                           f"{elsewhere}; learning curves come from those here"))
    where = out.resolve().parent

    def link(row: dict[str, Any]) -> str:
        return os.path.relpath(row["dir"], where) if row["id"] in here else ""

    return _page(f"study {study.name}", f"Study {study.name} in {urls.redact(study.storage)}", full, [sec], link,
                 scorer)


def _is_here(run: rundir.Run) -> bool:
    """Whether the run's directory (the absolute path its worker wrote) is on this machine."""
    return run.path.is_absolute() and run.path.name == run.id and (run.path / rundir.RUN_FILE).is_file()


def _page(title: str, source: str, full: board.Board, sections: list[Section],
          link: Callable[[dict[str, Any]], str], scorer: scoring.Scorer) -> Page:
    metric = sections[0].metric if len(sections) == 1 else None
    metric = board.PARETO if board.PARETO in full.columns and metric else metric  # several objectives
    ordered = board.sort(full, metric if metric in full.columns else None)
    columns = board.used_columns(ordered.rows, ordered.columns)
    cells = [[_value(row.get(c)) for c in columns] for row in ordered.rows]
    for sec in sections:
        _finish(sec, scorer)
    return Page(title, source, columns, cells, [link(row) for row in ordered.rows], sections)


def _value(value: Any) -> Any:
    """A cell for the page's JSON: numbers stay numbers (the table sorts them), NaN and inf
    become their words (JSON has neither), anything else its board text."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else board.cell(value)
    if kind is int or kind is str or value is None:
        return value
    return board.cell(value)


def _section(sweep_id: str, runs: list[rundir.Run], rows: list[dict[str, Any]], flags_file: str | None,
             baseline: float | None, gap: float, scorer: scoring.Scorer, here: set[str] | None = None,
             kind: str = "sweep", known_space: dict[str, Any] | None = None) -> Section:
    """One sweep's (or shared study's) part of the page. ``here``: the runs whose directories
    can be read (None: all of them); only those give curves and the flags file.
    ``known_space``: the search space when it is known without a flags file (a shared study
    records its own)."""
    metric, goal = importance.objective(runs)
    sec = Section(sweep_id, metric, goal, kind)
    by_id = {r.path.name: r for r in runs}
    ranked = _ranked(rows, metric, goal)
    readable = [r for r in runs if here is None or r.path.name in here]
    sec.summary = _summary(sweep_id, runs, flags_file, ranked, metric, goal, kind)
    space: dict[str, Any] | None = known_space
    if space is None:
        try:
            # the index keeps only the leaderboard's part of run.json: read a few runs whole
            space = importance.search_space(sweep_id, [rundir.read_run(r.path) for r in readable[:SPEC_TRIES]])
        except SweepError:
            space = None
    searched = list(space) if space is not None else _varying(runs)
    values = {name: [r.flags.get(name) for r in runs] for name in searched}
    axes = figures.axes(searched, space, values)
    fig = sec.plots

    if ranked and axes:
        fig.append(("parallel", "parallel coordinates", figures.parallel(ranked, axes, metric)))
    else:
        sec.notes.append(("parallel coordinates", f"no completed run has a finite {metric}" if not ranked
                          else "no flag was searched"))
    curves = _curves(ranked, rows, by_id, metric, here)
    if curves:
        fig.append(("curves", "learning curves", figures.learning_curves(curves, metric)))
    elif not readable:
        sec.notes.append(("learning curves", f"no run directory of this {kind} is on this machine"))
    else:
        sec.notes.append(("learning curves", f"no run logged {metric} per step"))
    if ranked:
        best = by_id[ranked[0]["id"]]
        pairs = [(c.train_key, c.train, c.dev_key, c.dev) for c in report.curves(best)]
        if here is not None and best.path.name not in here:
            sec.notes.append(("train against dev", f"the best run's directory is not on this machine "
                                                   f"({best.info.get('host') or 'another host'}: {best.path})"))
        elif pairs:
            fig.append(("traindev", "train against dev", figures.train_dev(best.path.name, pairs)))
        else:
            sec.notes.append(("train against dev", f"the best run {best.path.name} logged no train/dev pair per step"))
    _importance(sec, runs, ranked, axes, space, scorer)
    base = baseline if baseline is not None else _baseline(runs)
    points = [(r.path.name, d) for r in runs if r.status != "broken"
              for d in [diagnose(r.metrics, float(r.info.get("baseline_error") or base), gap)] if d]
    if points:
        fig.append(("biasvariance", "bias and variance", figures.bias_variance(points, base, gap)))
    else:
        sec.notes.append(("bias and variance", "no run reported a train and dev accuracy or error"))
    if len(ranked) >= 2:
        sec.compare = report.compare(by_id[ranked[0]["id"]], by_id[ranked[1]["id"]])
    return sec


def _ranked(rows: list[dict[str, Any]], metric: str, goal: str) -> list[dict[str, Any]]:
    """Completed runs with a finite objective, best first."""
    done = [r for r in rows if r["status"] == "completed" and figures.finite(r.get(metric)) is not None]
    return sorted(done, key=lambda r: float(r[metric]), reverse=goal != "minimize")


def _varying(runs: list[rundir.Run]) -> list[str]:
    """Without the flags file, the searched flags are those that took more than one value."""
    seen: dict[str, set[str]] = {}
    for run in runs:
        for name, value in run.flags.items():
            seen.setdefault(name, set()).add(board.cell(value))
    return [name for name, values in seen.items() if len(values) > 1]


def _baseline(runs: list[rundir.Run]) -> float:
    return float(next((r.info["baseline_error"] for r in runs if r.info.get("baseline_error")), 0.0))


def _summary(sweep_id: str, runs: list[rundir.Run], flags_file: str | None, ranked: list[dict[str, Any]],
             metric: str, goal: str, kind: str) -> list[tuple[str, str]]:
    counts = Counter(r.status for r in runs)
    spent = sum(r.info.get("duration") or 0.0 for r in runs)
    starts = [r.start for r in runs if r.start is not None]
    ends = [(r.start or 0.0) + (r.info.get("duration") or 0.0) for r in runs if r.start is not None]
    out = [(kind, sweep_id), ("flags file", flags_file or "unknown"),
           ("objective", f"{metric} ({goal})"),
           ("runs", ", ".join(f"{n} {s}" for s, n in counts.most_common())),
           ("time spent", f"{_duration(spent)} in trials, {_duration(max(ends) - min(starts)) if starts else '0 s'} "
                          "from first start to last end")]
    if ranked:
        best = ranked[0]
        flags = ", ".join(f"{c[5:]}={board.cell(v)}" for c, v in best.items() if c.startswith("flag_"))
        out.append(("best run", f"{best['id']}: {metric} = {board.cell(best[metric])}"))
        out.append(("best flags", flags or "none"))
    else:
        out.append(("best run", f"none: no completed run has a finite {metric}"))
    return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _curves(ranked: list[dict[str, Any]], rows: list[dict[str, Any]], by_id: dict[str, rundir.Run],
            metric: str, here: set[str] | None) -> list[figures.CurveRun]:
    """The objective's history of the best runs and of a few pruned ones (cut short), of those
    whose directories are ``here`` (None: all)."""
    top = ranked[0]["id"] if ranked else None
    if here is not None:
        ranked = [r for r in ranked if r["id"] in here]
        rows = [r for r in rows if r["id"] in here]
    pruned = [r for r in rows if r["status"] == "pruned"][:PRUNED_CURVES]
    out = []
    for row in [*ranked[:CURVE_RUNS], *pruned]:
        points = report.history(by_id[row["id"]]).get(metric, [])
        if points:
            out.append(figures.CurveRun(row["id"], row["status"], points, best=row["id"] == top))
    return out


def _importance(sec: Section, runs: list[rundir.Run], ranked: list[dict[str, Any]],
                axes: list[figures.Axis], space: dict[str, Any] | None, scorer: scoring.Scorer) -> None:
    """Hands the sweep's fANOVA to the scorer; ``_finish`` lays out its figures."""
    if space is None or not sec.metric:
        why = (importance.NO_OBJECTIVE if not sec.metric
               else "the sweep's flags file (its snapshot or the original) cannot be read")
        for name in IMPORTANCE_VIEWS:
            sec.notes.append((name, why))
        return
    by_id = {r.path.name: r for r in runs}
    sample = [by_id[r["id"]] for r in ranked]
    random.Random(0).shuffle(sample)
    try:
        study = importance.study_of(sec.sweep, sample[:PLOT_SAMPLE], sec.metric, _goal(sec.goal), space)
        scored = (study if len(sample) <= FANOVA_SAMPLE
                  else importance.study_of(sec.sweep, sample[:FANOVA_SAMPLE], sec.metric, _goal(sec.goal),
                                               space))
    except SweepError as exc:
        for name in IMPORTANCE_VIEWS:
            sec.notes.append((name, str(exc)))
        return
    signs = {a.name: figures.flag_correlation(ranked, a, sec.metric) for a in axes}
    note = f" (fANOVA on a random {FANOVA_SAMPLE} of {len(sample)} runs)" if len(sample) > FANOVA_SAMPLE else ""
    sec.pending = Pending(study, scorer.submit(scored), signs, note, len(sec.plots))


def _finish(sec: Section, scorer: scoring.Scorer) -> None:
    """The importance, slice and contour figures, once the scores are in, where they belong."""
    wait, sec.pending = sec.pending, None
    if wait is None:
        return
    try:
        scores = scorer.result(wait.job)
    except SweepError as exc:
        sec.notes += [(name, str(exc)) for name in IMPORTANCE_VIEWS]
        return
    order = list(scores)
    plots = [("importance", "flag importance", figures.importance(scores, wait.signs, sec.metric, wait.note)),
             ("slices", "slice plots", figures.slices(wait.study, order))]
    if len(order) >= 2:
        plots.append(("contour", "contour", figures.contour(wait.study, order[:2])))
    else:
        sec.notes.append(("contour", "the sweep searched one flag: a contour needs two"))
    sec.plots[wait.at:wait.at] = plots


def _goal(goal: str) -> Any:
    return "minimize" if goal == "minimize" else "maximize"


# ---------------------------------------------------------------- the page


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1,h2{font-weight:600} table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;white-space:nowrap}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0} th.sorted{background:#dde}
.board{max-height:32em;overflow:auto;border:1px solid #ddd} .summary th{cursor:default;background:none}
.figure{margin:1em 0} .note{color:#666;font-style:italic} .same{color:#999}
"""

SCRIPT = """
const D = JSON.parse(document.getElementById('report-data').textContent);
for (const f of D.figures) {
  Plotly.newPlot(f.id, f.figure.data, f.figure.layout, {displaylogo: false, responsive: true});
}
const table = document.getElementById('board');
const WORDS = ['nan', 'inf', '-inf'];
function rank(v) { return v === null ? 3 : typeof v === 'number' ? 0 : WORDS.includes(v) ? 2 : 1; }
function drawBoard(rows) {
  const body = document.createElement('tbody');
  for (const [i, row] of rows) {
    const tr = body.insertRow();
    row.forEach((v, c) => {
      const td = tr.insertCell();
      const text = v === null ? '' : typeof v === 'number' ? +v.toPrecision(6) + '' : v;
      if (c === 0 && D.links[i]) {  // a shared study's run on another machine has no link
        const a = document.createElement('a'); a.href = D.links[i]; a.textContent = text; td.append(a);
      } else td.textContent = text;
    });
  }
  table.tBodies[0].replaceWith(body);
}
let order = D.rows.map((r, i) => [i, r]);
table.tHead.querySelectorAll('th').forEach((th, c) => th.addEventListener('click', () => {
  const down = th.dataset.dir !== 'down';
  table.tHead.querySelectorAll('th').forEach(h => { h.classList.remove('sorted'); delete h.dataset.dir; });
  th.classList.add('sorted'); th.dataset.dir = down ? 'down' : 'up';
  order.sort((a, b) => {
    const x = a[1][c], y = b[1][c], rx = rank(x), ry = rank(y);
    if (rx !== ry) return rx - ry;  // missing, NaN and inf always last, as in sweep ls
    if (rx >= 2) return 0;
    const d = rx === 0 ? x - y : String(x).localeCompare(String(y));
    return down ? -d : d;
  });
  drawBoard(order);
}));
drawBoard(order);
"""


def render(page: Page) -> str:
    import plotly.offline

    esc = html.escape
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(page.title)}</title>",
             f"<style>{STYLE}</style><script>{plotly.offline.get_plotlyjs()}</script></head><body>",
             f"<h1>{esc(page.title)}</h1><p>{esc(page.source)}; written "
             f"{esc(rundir.iso(page.created) or '')}.</p>"]
    plots = []
    for i, sec in enumerate(page.sections):
        parts.append(f"<section id=sweep-{i}><h2>{sec.kind} {esc(sec.sweep)}</h2><table class=summary>")
        parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in sec.summary]
        parts.append("</table>")
        if sec.compare:
            parts.append(_compare(sec.compare))
        for fid, name, fig in sec.plots:
            dom_id = f"{fid}-{i}"
            parts.append(f"<div class=figure id={dom_id} data-figure='{esc(name)}'></div>")
            plots.append({"id": dom_id, "figure": fig})
        parts += [f"<p class=note>No {esc(name)}: {esc(why)}.</p>" for name, why in sec.notes]
        parts.append("</section>")
    head = "".join(f"<th>{esc(c)}</th>" for c in page.columns)
    parts.append(f"<section><h2>Leaderboard ({len(page.rows)} runs)</h2><p>Click a column to sort; "
                 f"each id links to its run directory.</p><div class=board><table id=board><thead><tr>{head}"
                 "</tr></thead><tbody></tbody></table></div></section>")
    data = {"figures": plots, "rows": page.rows, "links": page.links}
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    parts.append(f"<script id=report-data type=application/json>{text}</script><script>{SCRIPT}</script>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _compare(view: report.CompareView) -> str:
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(r.key)}</td><td>{esc(board.cell(r.left))}</td><td>{esc(board.cell(r.right))}"
                   f"</td></tr>" for r in view.rows if not r.same)
    same = sum(r.same for r in view.rows)
    return (f"<h3>Best run beside the runner-up</h3><table class=compare><tr><th>what</th><th>{esc(view.a)} (best)"
            f"</th><th>{esc(view.b)}</th></tr>{rows}</table><p class=same>{same} flags and metrics the same.</p>")


def write(source: Path | Study, refs: list[str], everything: bool, out: Path, baseline: float | None = None,
          gap: float = DEFAULT_GAP) -> Page:
    """Build the report and write it to ``out`` atomically; returns what was written."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise SweepError(EXTRA) from None
    page = build(source, refs, everything, out, baseline, gap)
    text = render(page)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return page
