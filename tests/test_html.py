"""``sweep report``: the HTML file, opened in a real headless Chromium (Debian's ``chromium``).

The browser is driven by its command line: ``--dump-dom`` gives the page after its scripts
ran (plotly draws SVG, so each figure's traces and points can be counted), ``--enable-logging``
puts every console message on stderr, ``--screenshot`` writes a PNG. A real sweep of a
pygcn-style script makes the main report; run directories written in the record's format
make the odd states (one run, all failed, NaN and inf, no history, running, pruned).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweep import index, rundir

from helpers import SCRIPTS, project, python_env, run_dirs, sweep_cli
from pgserver import PASSWORD, bin_dir

CHROMIUM = shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),  # CI installs it (.ci/run): there it must be found
    reason="headless Chromium not installed (apt-get install chromium)")
# Software WebGL for the parallel coordinates, opted into so Chromium logs no deprecation
# warning; a virtual-time budget lets plotly finish drawing before the DOM is dumped.
BROWSER = ["--headless", "--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
           "--hide-scrollbars", "--virtual-time-budget=3000"]
needs_pg = pytest.mark.skipif(bin_dir() is None, reason="PostgreSQL is not installed (.ci/run installs it)")
TRAIN = SCRIPTS / "report" / "train.py"
FLAGS = {"lr": {"min": 0.0001, "max": 1.0, "log": True}, "dropout": [0.0, 0.2, 0.5],
         "hidden": [8, 16, 32, 64], "optimizer": ["sgd", "adam"]}


def browse(page: Path, *extra: str) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and every console message it logged."""
    assert CHROMIUM, "chromium is not installed"
    proc = subprocess.run([CHROMIUM, *BROWSER, "--enable-logging=stderr", "--v=0", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def sections(dom: str) -> dict[str, str]:
    """Each sweep's part of the page, by sweep id."""
    return dict(re.findall(r'<section id="sweep-\d+"><h2>sweep ([^<]+)</h2>(.*?)</section>', dom, re.S))


def figures(markup: str) -> dict[str, str]:
    """Each figure's drawn markup in one sweep's part of the page, by its name (data-figure)."""
    starts = list(re.finditer(r'<div class="figure[^"]*" id="[^"]+" data-figure="([^"]+)"', markup))
    return {m.group(1): markup[m.start():starts[i + 1].start() if i + 1 < len(starts) else len(markup)]
            for i, m in enumerate(starts)}


def traces(markup: str) -> int:
    """Scatter traces drawn in a figure's plot area (its legend is not counted)."""
    return markup.count('<g class="trace scatter')


def board_rows(dom: str) -> list[str]:
    body = dom[dom.index('<table id="board">'):]
    body = body[body.index("<tbody>"):body.index("</tbody>")]
    return re.findall(r"<tr>.*?</tr>", body)


def report(runs: Path, out: Path, *args: Any) -> str:
    result = sweep_cli("report", "--runs-dir", runs, "-o", out, *args)
    assert result.exit_code == 0, result.stderr
    return result.stderr


# ---------------------------------------------------------------- a real sweep


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real sweep: 12 trials of train.py, some of which diverge and fail."""
    root = tmp_path_factory.mktemp("sweep")
    flags = project(root, FLAGS, script=TRAIN, trials=12, seed=1, metric="eval_accuracy")
    result = sweep_cli("run", flags, "--runs-dir", root / "runs")
    assert result.exit_code == 1, result.stderr  # the diverged trials failed
    out = root / "report.html"
    report(root / "runs", out)
    return root / "runs", out


def test_report_is_one_file_that_needs_no_network(swept: tuple[Path, Path]) -> None:
    runs, out = swept
    text = out.read_text()
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert text.count("<script") == 3  # plotly.js, the data, the page's own script
    assert "Plotly.newPlot" in text
    assert [p.name for p in out.parent.iterdir() if p.suffix == ".tmp" or p.name.startswith(".")] == []


@needs_browser
def test_every_figure_draws_its_data_in_a_browser(swept: tuple[Path, Path]) -> None:
    runs, out = swept
    dom, console = browse(out, "--dump-dom")
    assert console == []
    done = [r for r in run_dirs(runs) if rundir.read_run(r).status == "completed"]
    n_flags = len(FLAGS)
    (part,) = sections(dom).values()
    figs = figures(part)
    # in this order: fANOVA's three come back from the scoring worker last, and go in their place
    assert list(figs) == ["parallel coordinates", "learning curves", "train against dev", "flag importance",
                          "slice plots", "contour", "bias and variance"]
    for name, markup in figs.items():
        assert 'class="main-svg"' in markup, f"{name} was not drawn"
    # parallel coordinates: an axis per searched flag and one for the objective
    assert figs["parallel coordinates"].count('class="y-axis"') == n_flags + 1
    assert f"Flags and eval_accuracy ({len(done)} runs)" in figs["parallel coordinates"]
    assert traces(figs["learning curves"]) == min(10, len(done))
    assert traces(figs["train against dev"]) == 4  # train/eval loss and accuracy
    assert figs["flag importance"].count('class="point"') == n_flags  # one bar per flag
    assert figs["slice plots"].count('class="point"') == n_flags * len(done)
    assert 'class="contour"' in figs["contour"] and figs["contour"].count('class="point"') == len(done)
    assert figs["bias and variance"].count('class="point"') == len(done)
    assert len(board_rows(dom)) == len(run_dirs(runs))


def test_summary_and_best_beside_runner_up(swept: tuple[Path, Path]) -> None:
    runs, out = swept
    ranked = sorted((rundir.read_run(p) for p in run_dirs(runs)), key=lambda r: -r.metrics.get("eval_accuracy", -1))
    best, second = ranked[0], ranked[1]
    text = out.read_text()
    assert f"<th>best run</th><td>{best.id}: eval_accuracy = {best.metrics['eval_accuracy']:.6g}</td>" in text
    assert f"<th>{best.id} (best)</th><th>{second.id}</th>" in text
    failed = sum(rundir.read_run(p).status == "failed" for p in run_dirs(runs))
    assert f"{12 - failed} completed, {failed} failed" in text
    differing = [k for k in best.flags if best.flags[k] != second.flags[k]]
    for key in differing:
        assert f"<tr><td>flag_{key}</td>" in text


@needs_browser
def test_screenshot_is_not_blank(swept: tuple[Path, Path], tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    browse(swept[1], "--window-size=1200,2400", f"--screenshot={shot}")
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 2400)
    colours = {pixels[i:i + 3] for i in range(0, len(pixels), 3 * 97)}
    assert len(colours) > 50  # text, lines, colour scales: not a blank or one-colour page
    readme = os.environ.get("SWEEP_README_SCREENSHOT")  # README's picture: docs/report.png
    if readme:
        browse(swept[1], "--window-size=1200,2600", "--force-device-scale-factor=0.6", f"--screenshot={readme}")


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and raw RGB bytes of an 8-bit RGB or RGBA PNG (what Chromium writes);
    scanline filters are left in, which is enough to tell a blank image from a drawn one."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, kind = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and kind in (2, 6)
    chunks, pos = [], 8
    while pos < len(data):
        size, tag = struct.unpack(">I4s", data[pos:pos + 8])
        if tag == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + size])
        pos += 12 + size
    raw = zlib.decompress(b"".join(chunks))
    step = 4 if kind == 6 else 3
    rgb = bytearray()
    stride = width * step + 1
    for y in range(height):
        line = raw[y * stride + 1:(y + 1) * stride]
        for x in range(0, len(line), step):
            rgb += line[x:x + 3]
    return width, height, bytes(rgb)


# ---------------------------------------------------------------- any state


def make_run(runs: Path, sweep: str, trial: int, status: str, flags: dict[str, Any],
             metrics: dict[str, float], history: list[dict[str, float]] | None = None,
             flags_file: Path | None = None) -> Path:
    """A run directory as a sweep leaves it, written through rundir's own writer."""
    info = rundir.RunInfo(sweep=sweep, trial=trial, status=status, start=time.time() - 100 + trial,
                          duration=1.0 + trial, metric="eval_accuracy", goal="maximize",
                          flags_file=str(flags_file) if flags_file else None, host=rundir.host(),
                          sweep_pid=os.getpid(), reason="exit code 1" if status == "failed" else None)

    def fill(stage: Path, path: Path) -> None:
        for i, point in enumerate(history or []):
            rundir.append_jsonl(stage / rundir.METRICS_HISTORY, {"step": i, **point})
        if flags_file:
            (stage / rundir.SOURCE_DIR).mkdir()
            shutil.copy(flags_file, stage / rundir.SOURCE_DIR / flags_file.name)

    path = rundir.RunWriter(runs, [index.Notes(runs, sweep)]).create(info, flags, fill)
    if status != "running":
        rundir.RunWriter(runs, [index.Notes(runs, sweep)]).end(path, info, metrics)
    return path


def flags_file(root: Path) -> Path:
    return project(root, FLAGS, script=TRAIN)


def curve(final: float, steps: int = 5) -> list[dict[str, float]]:
    return [{"eval_accuracy": final * (i + 1) / steps, "train_accuracy": final * (i + 2) / (steps + 1)}
            for i in range(steps)]


def flags_of(i: int) -> dict[str, Any]:
    return {"lr": 10 ** -(1 + i % 4), "dropout": [0.0, 0.2, 0.5][i % 3], "hidden": [8, 16, 32, 64][i % 4],
            "optimizer": ["sgd", "adam"][i % 2]}


def one_run(runs: Path, ff: Path, sweep: str = "s1") -> None:
    make_run(runs, sweep, 0, "completed", flags_of(0), {"eval_accuracy": 0.8, "train_accuracy": 0.9}, curve(0.8), ff)


def all_failed(runs: Path, ff: Path, sweep: str = "s1") -> None:
    for i in range(3):
        make_run(runs, sweep, i, "failed", flags_of(i), {}, None, ff)


def nan_and_inf(runs: Path, ff: Path, sweep: str = "s1") -> None:
    for i in range(8):
        value = [float("nan"), float("inf")][i] if i < 2 else 0.5 + i / 20
        make_run(runs, sweep, i, "completed", flags_of(i), {"eval_accuracy": value, "train_accuracy": 0.95},
                 curve(0.5 + i / 20), ff)


def no_history(runs: Path, ff: Path, sweep: str = "s1") -> None:
    for i in range(6):
        make_run(runs, sweep, i, "completed", flags_of(i), {"eval_accuracy": 0.5 + i / 20}, None, ff)


def running(runs: Path, ff: Path, sweep: str = "s1") -> None:
    for i in range(5):
        make_run(runs, sweep, i, "completed", flags_of(i), {"eval_accuracy": 0.5 + i / 20}, curve(0.5 + i / 20), ff)
    make_run(runs, sweep, 5, "running", flags_of(5), {}, curve(0.4, 2), ff)


def pruned(runs: Path, ff: Path, sweep: str = "s1") -> None:
    for i in range(6):
        make_run(runs, sweep, i, "completed", flags_of(i), {"eval_accuracy": 0.5 + i / 20}, curve(0.5 + i / 20), ff)
    make_run(runs, sweep, 6, "pruned", flags_of(6), {"eval_accuracy": 0.1}, curve(0.3)[:2], ff)


# state -> (how to make it, runs in the table, figures drawn, text the page must hold)
STATES = {
    "one run": (one_run, 1, {"parallel coordinates", "learning curves", "train against dev", "bias and variance"},
                ["No flag importance: sweep s1 has 1 completed run; importance needs at least 5"]),
    "all failed": (all_failed, 3, set(), ["No parallel coordinates: no completed run has a finite eval_accuracy",
                                          "best run</th><td>none"]),
    "nan and inf": (nan_and_inf, 8, {"parallel coordinates", "learning curves", "train against dev",
                                     "flag importance", "slice plots", "contour", "bias and variance"},
                    ["Flags and eval_accuracy (6 runs)"]),
    "no history": (no_history, 6, {"parallel coordinates", "flag importance", "slice plots", "contour"},
                   ["No learning curves: no run logged eval_accuracy per step"]),
    "running": (running, 6, {"parallel coordinates", "learning curves", "train against dev", "flag importance",
                             "slice plots", "contour", "bias and variance"},  # the running run's point
                ["1 running", "Bias and variance (1 runs"]),
    "pruned": (pruned, 7, {"parallel coordinates", "learning curves", "train against dev", "flag importance",
                           "slice plots", "contour"}, ["(pruned)"]),
}


@needs_browser
def test_any_state_opens_and_is_right(tmp_path: Path) -> None:
    """Every state at once: one sweep each, one report of them all (--all), one browser."""
    runs = tmp_path / "runs"
    ff = flags_file(tmp_path / "project")
    for i, (make, *_) in enumerate(STATES.values()):
        make(runs, ff, f"s{i}")
    out = tmp_path / "r.html"
    report(runs, out, "--all")
    dom, console = browse(out, "--dump-dom")
    assert console == []
    parts = sections(dom)
    rows = board_rows(dom)
    for i, (state, (_make, count, drawn, texts)) in enumerate(STATES.items()):
        part = parts[f"s{i}"]
        figs = figures(part)
        assert set(figs) == drawn, state
        for name, markup in figs.items():
            assert 'class="main-svg"' in markup, f"{state}: {name} was not drawn"
        assert sum(f"<td>s{i}</td>" in row for row in rows) == count, state
        for text in texts:
            assert text.replace("s1", f"s{i}") in part, state
    assert len(rows) == sum(count for _m, count, *_ in STATES.values())


@needs_browser
def test_pruned_runs_are_cut_short_in_the_curves(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pruned(runs, flags_file(tmp_path / "project"))
    out = tmp_path / "r.html"
    report(runs, out)
    dom, _ = browse(out, "--dump-dom")
    curves = figures(dom)["learning curves"]
    assert traces(curves) == 8  # six completed runs, the pruned one, and its cross
    assert curves.count("stroke-dasharray") >= 1  # the pruned run is dashed...
    assert curves.count('class="point"') == 1  # ...and ends in a cross where it was stopped


def test_nan_and_inf_stay_words_in_the_table(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    nan_and_inf(runs, flags_file(tmp_path / "project"))
    out = tmp_path / "r.html"
    report(runs, out)
    text = out.read_text()
    data = text[text.index('<script id=report-data type=application/json>'):]
    data = data[:data.index("</script>")]
    assert '"nan"' in data and '"inf"' in data and "NaN" not in data and "Infinity" not in data


# ---------------------------------------------------------------- choosing sweeps, errors


def test_report_all_and_one_sweep_of_several(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    ff = flags_file(tmp_path / "project")
    for i in range(3):
        make_run(runs, "sA", i, "completed", flags_of(i), {"eval_accuracy": 0.5}, None, ff)
    for i in range(2):
        make_run(runs, "sB", i, "completed", flags_of(i), {"eval_accuracy": 0.6}, None, ff)
    out = tmp_path / "r.html"
    assert "sweep sA, 3 runs" in report(runs, out, "sA")
    assert "2 sweeps, 5 runs" in report(runs, out, "--all")
    text = out.read_text()
    assert "<h2>sweep sA</h2>" in text and "<h2>sweep sB</h2>" in text


def test_runs_link_to_their_directories(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    one_run(runs, flags_file(tmp_path / "project"))
    out = tmp_path / "out" / "r.html"
    out.parent.mkdir()
    report(runs, out)
    (run,) = run_dirs(runs)
    assert f'"links":["../runs/{run.name}"]' in out.read_text()


def test_missing_plotly_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    one_run(runs, flags_file(tmp_path / "project"))
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly now raises ImportError
    result = sweep_cli("report", "--runs-dir", runs, "-o", tmp_path / "r.html")
    assert result.exit_code == 1
    assert result.stderr == "Error: sweep report needs plotly, an optional extra: pip install 'sweep[report]'\n"
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--runs-dir", "nowhere"], "Error: runs directory nowhere does not exist\n"),
    (["--all", "s1"], "Error: give sweeps or --all, not both\n"),
])
def test_bad_usage_is_exit_2(args: list[str], message: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = sweep_cli("report", *args)
    assert (result.exit_code, result.stderr) == (2, message)


def test_unknown_sweep_is_one_line(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    one_run(runs, flags_file(tmp_path / "project"))
    result = sweep_cli("report", "nosuch", "--runs-dir", runs, "-o", tmp_path / "r.html")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no sweep matches 'nosuch'") and result.stderr.count("\n") == 1


@needs_browser
def test_clicking_a_column_sorts_the_board(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    nan_and_inf(runs, flags_file(tmp_path / "project"))
    out = tmp_path / "r.html"
    report(runs, out)
    text = out.read_text()
    head = text[text.index('<table id=board><thead>'):text.index("</thead>")]
    columns = re.findall(r"<th>([^<]*)</th>", head)
    at = columns.index("flag_lr")
    # a real click event in the page, twice on flag_lr: the second click sorts it ascending
    clicked = tmp_path / "clicked.html"
    click = f"<script>const th = document.querySelectorAll('#board th')[{at}]; th.click(); th.click();</script>"
    clicked.write_text(text.replace("</body>", click + "</body>"))
    dom, console = browse(clicked, "--dump-dom")
    assert console == []
    cells = [re.findall(r"<td>(.*?)</td>", row)[at] for row in board_rows(dom)]
    assert [float(c) for c in cells] == sorted(float(c) for c in cells)
    assert 'class="sorted" data-dir="up">flag_lr' in dom


# ---------------------------------------------------------------- a shared study (issue 13's database)


def worker(flags: Path, runs: Path, storage: str, study: str) -> subprocess.Popen:
    """One ``sweep run`` worker of a shared study, as on its own machine."""
    cmd = [sys.executable, "-m", "sweep", "run", str(flags), "--runs-dir", str(runs), "--storage", storage,
           "--study", study, "--launcher", "spawn"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=python_env(NO_COLOR="1"))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[Path]]]:
    """A worker ran 10 trials of train.py on a PostgreSQL study; then the directories of its
    odd trials moved away, as if another machine had run them. The URL, the root, the two
    runs directories (here, elsewhere)."""
    from pgserver import Server

    root = tmp_path_factory.mktemp("study")
    with Server() as pg:
        url = pg.create_database("shared")
        flags = project(root / "proj", FLAGS, script=TRAIN, trials=10, seed=3, metric="eval_accuracy")
        here, elsewhere = root / "here", root / "elsewhere"
        proc = worker(flags, here, url, "gcn")
        _, stderr = proc.communicate(timeout=180)
        assert proc.returncode in (0, 1), stderr  # some trials diverge and fail
        elsewhere.mkdir()
        for path in run_dirs(here)[1::2]:
            path.rename(elsewhere / path.name)
        yield url, root, [here, elsewhere]


def study_report(url: str, out: Path, name: str = "gcn") -> str:
    result = sweep_cli("report", "--storage", url, "--study", name, "-o", out)
    assert result.exit_code == 0, result.stderr
    return result.stderr


@needs_pg
@needs_browser
def test_shared_study_report_has_every_workers_runs(study: tuple[str, Path, list[Path]]) -> None:
    url, root, (here, elsewhere) = study
    out = root / "study.html"
    assert study_report(url, out) == f"wrote {out}: study gcn, 10 runs\n"
    text = out.read_text()
    assert PASSWORD not in text and "postgresql://sweep:***@127.0.0.1" in text
    mine, theirs = run_dirs(here), run_dirs(elsewhere)
    assert (len(mine), len(theirs)) == (5, 5)
    host = os.uname().nodename  # the moved runs ran here too: their rows name this host
    assert (f"<th>run directories</th><td>{len(mine)} of 10 on this machine ({host}); the others are on "
            f"{host}; learning curves come from those here</td>") in text
    dom, console = browse(out, "--dump-dom")
    assert console == []
    part = dom[dom.index('<section id="sweep-0"><h2>study gcn</h2>'):]
    figs = figures(part[:part.index("</section>")])
    for name in ("parallel coordinates", "learning curves", "flag importance", "slice plots", "contour",
                 "bias and variance"):
        assert 'class="main-svg"' in figs[name], f"{name} was not drawn"
    done = [r for r in (rundir.read_run(p) for p in [*mine, *theirs]) if r.status == "completed"]
    assert f"Flags and eval_accuracy ({len(done)} runs)" in figs["parallel coordinates"]
    # curves only of the runs whose directories are here: the others' histories are not
    mine_done = [p for p in mine if rundir.read_run(p).status == "completed"]
    assert traces(figs["learning curves"]) == min(10, len(mine_done))
    best = max(done, key=lambda r: r.metrics["eval_accuracy"])
    if best.path.parent == here:
        assert traces(figs["train against dev"]) == 4
    else:
        assert "No train against dev: the best run's directory is not on this machine" in part
    # every run on the board, each on this machine linked to its directory, the others not
    rows = board_rows(dom)
    assert len(rows) == 10
    linked = {m for row in rows for m in re.findall(r'<a href="[^"]*/([^"/]+)">', row)}
    assert linked == {p.name for p in mine}


@needs_pg
def test_shared_study_with_no_run_directory_here_says_so(study: tuple[str, Path, list[Path]],
                                                         tmp_path: Path) -> None:
    url, root, (here, _) = study
    away = here.rename(tmp_path / "moved")
    try:
        study_report(url, tmp_path / "r.html")
    finally:
        away.rename(here)
    text = (tmp_path / "r.html").read_text()
    assert "No learning curves: no run directory of this study is on this machine." in text
    assert "<th>run directories</th><td>0 of 10 on this machine" in text
    assert '"links":["","",' in text
    # The space comes from the study itself, so the views that need it are all there.
    assert "No flag importance" not in text and "No slice" not in text and "No contour" not in text


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--storage", "x.journal"], 2,
     "Error: report: --storage and --study go together (the shared study to report)\n"),
    (["--storage", "x.journal", "--study", "s", "--all"], 2,
     "Error: report: give sweeps, --all or --storage with --study, not more than one\n"),
    (["--storage", "nosuch.journal", "--study", "s"], 2, "Error: --storage: no journal file nosuch.journal\n"),
])
def test_shared_study_bad_usage_is_one_line(args: list[str], code: int, message: str, tmp_path: Path) -> None:
    result = sweep_cli("report", *args, "-o", tmp_path / "r.html")
    assert (result.exit_code, result.stderr) == (code, message)
    assert not (tmp_path / "r.html").exists()
