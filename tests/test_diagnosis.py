"""Bias/variance diagnosis: the formulas by hand, and the column in every `sweep ls` format
and in `sweep show`, on run directories made by a real sweep."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from sweep import diagnosis, render, report

from helpers import sweep_cli


@pytest.mark.parametrize("metrics, baseline, label, bias, variance", [
    # train 99% / dev 98.5%: 1 point of bias, 0.5 of variance
    ({"train_accuracy": 0.99, "eval_accuracy": 0.985}, 0.0, "good fit", 1.0, 0.5),
    # train 99% / dev 89%: variance 10 points
    ({"train_accuracy": 0.99, "eval_accuracy": 0.89}, 0.0, "high variance", 1.0, 10.0),
    # train 85% / dev 84%: bias 15 points
    ({"train_accuracy": 0.85, "eval_accuracy": 0.84}, 0.0, "high bias", 15.0, 1.0),
    # train 85% / dev 70%: both
    ({"train_accuracy": 0.85, "eval_accuracy": 0.70}, 0.0, "high bias + high variance", 15.0, 15.0),
    # the same 85% train is a good fit when humans only reach 86% (baseline error 14%)
    ({"train_accuracy": 0.85, "eval_accuracy": 0.84}, 14.0, "good fit", 1.0, 1.0),
    # errors given directly, as percentages
    ({"train_error": 2.0, "eval_error": 12.0}, 0.0, "high variance", 2.0, 10.0),
    # accuracies given as percentages
    ({"train_accuracy": 80.0, "eval_accuracy": 79.0}, 0.0, "high bias", 20.0, 1.0),
])
def test_diagnose_by_hand(metrics, baseline, label, bias, variance):
    d = diagnosis.diagnose(metrics, baseline_error=baseline)
    assert d.label == label
    assert math.isclose(d.bias, bias, abs_tol=1e-9)
    assert math.isclose(d.variance, variance, abs_tol=1e-9)


def test_gap_is_the_threshold():
    metrics = {"train_accuracy": 0.99, "eval_accuracy": 0.92}  # variance 7 points
    assert diagnosis.diagnose(metrics, gap=5).label == "high variance"
    assert diagnosis.diagnose(metrics, gap=8).label == "good fit"


def test_no_diagnosis_without_a_pair_or_with_nan():
    assert diagnosis.diagnose({"eval_accuracy": 0.9}) is None
    assert diagnosis.diagnose({"train_accuracy": math.nan, "eval_accuracy": 0.9}) is None


def test_recipes_name_the_remedies():
    assert "bigger network" in " ".join(diagnosis.diagnose({"train_accuracy": 0.7, "eval_accuracy": 0.69}).recipe())
    tips = " ".join(diagnosis.diagnose({"train_accuracy": 1.0, "eval_accuracy": 0.7}).recipe())
    assert "more data" in tips and "regularize" in tips


def test_turning_point_finds_where_dev_loss_rises():
    dev = [(0, 1.0), (1, 0.6), (2, 0.4), (3, 0.5), (4, 0.7)]
    assert report.turning_point(dev) == 2
    assert report.turning_point([(0, 1.0), (1, 0.5), (2, 0.3)]) is None
    lines = render.curve([(0, 1.0), (1, 0.5)], dev)
    assert any("t" in line for line in lines) and any("d" in line for line in lines)


SCRIPT = """
import argparse
p = argparse.ArgumentParser()
p.add_argument("--train", type=float)
p.add_argument("--dev", type=float)
a = p.parse_args()
for epoch, loss in enumerate([0.9, 0.5, 0.3, 0.4, 0.6]):
    print(f"epoch {epoch}: train_loss={loss * 0.8:.3f} eval_loss={loss:.3f}")
print(f"train_accuracy: {a.train}")
print(f"eval_accuracy: {a.dev}")
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("diag")
    (root / "fit.py").write_text(SCRIPT)
    (root / "f.yaml").write_text(
        "script: fit.py\nsampler: grid\nflags:\n  train: [0.99, 0.85]\n  dev: [0.985, 0.70]\n")
    result = sweep_cli("run", root / "f.yaml", "--runs-dir", root / "runs", "--launcher", "spawn")
    assert result.exit_code == 0, result.output
    return root / "runs"


EXPECTED = {(0.99, 0.985): "good fit", (0.99, 0.70): "high variance",
            (0.85, 0.985): "high bias", (0.85, 0.70): "high bias + high variance"}


def _ls(runs: Path, *args: str) -> str:
    result = sweep_cli("ls", "--runs-dir", runs, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_diagnosis_in_json_and_csv(runs):
    rows = json.loads(_ls(runs, "--format", "json"))
    assert {(r["flag_train"], r["flag_dev"]): r["diagnosis"] for r in rows} == EXPECTED
    table = list(csv.DictReader(io.StringIO(_ls(runs, "--format", "csv"))))
    assert {(float(r["flag_train"]), float(r["flag_dev"])): r["diagnosis"] for r in table} == EXPECTED


def test_diagnosis_in_table_and_markdown(runs):
    for fmt in ("table", "markdown"):
        out = _ls(runs, "--format", fmt)
        assert "diagnosis" in out.splitlines()[0]
        for label in EXPECTED.values():
            assert label in out


def test_baseline_error_option_changes_the_verdict(runs):
    rows = json.loads(_ls(runs, "--format", "json", "--baseline-error", "14"))
    got = {(r["flag_train"], r["flag_dev"]): r["diagnosis"] for r in rows}
    assert got[(0.85, 0.985)] == "good fit"  # 15% train error is 1 point above a 14% baseline
    rows = json.loads(_ls(runs, "--format", "json", "--gap", "40"))
    assert {r["diagnosis"] for r in rows} == {"good fit"}


def test_show_prints_diagnosis_recipe_and_curves(runs):
    rows = json.loads(_ls(runs, "--format", "json"))
    run_id = next(r["id"] for r in rows if r["diagnosis"] == "high variance")
    result = sweep_cli("show", run_id, "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "diagnosis  high variance" in out
    assert "more data" in out
    assert "learning curve: train_loss (t) vs eval_loss (d)" in out
    assert "lowest at step 2" in out
