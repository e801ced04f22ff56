"""A W&B sweep configuration -> the same frozen ``SweepSpec`` a flags file gives, so the rest of
the tool runs it unchanged. Pure: reads a parsed mapping, runs nothing.

The keys, defaults and checks follow W&B's own sweep schema (wandb/sweeps
``config/schema.json``) and its agent: an unknown key is an error, as the schema's
``additionalProperties: false`` makes it; ``metric.goal`` defaults to minimize; ``min``/``max``
that are both integers mean ``int_uniform``; grid accepts only what W&B's grid accepts.
Keys that only mean something on W&B's servers are accepted and named in one note.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep import dists, samplers
from sweep.spec import FLAG_NAME_RE, FLAG_NAME_RULE, NO_METRIC, Flag, Pruner, SweepSpec, _Checker, _kind, infer_goal
from sweep.spec import TOP_KEYS as NATIVE_KEYS

if TYPE_CHECKING:
    from sweep.errors import SpecError

METHODS = {"random": "random", "grid": "grid", "bayes": "tpe"}  # bayes: Optuna's TPE
SERVER_KEYS = ("entity", "project", "controller", "scheduler", "job", "image_uri", "apiVersion", "kind")
TOP_KEYS = {"program", "method", "metric", "parameters", "early_terminate", "command", "run_cap",
            "name", "description", "metrics", *SERVER_KEYS}
METRIC_KEYS = {"name", "goal", "target", "impute", "impute_while_running"}
IMPUTE = ("latest", "best", "worst")
HYPERBAND_KEYS = {"type", "min_iter", "max_iter", "s", "eta", "strict"}
# Each distribution and the keys it takes besides ``distribution`` (the schema's properties).
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values",),
    "categorical_w_probabilities": ("values", "probabilities"),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "q_uniform": ("min", "max", "q"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "q_log_uniform": ("min", "max", "q"),
    "q_log_uniform_values": ("min", "max", "q"),
    "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"),
    "normal": ("mu", "sigma"),
    "q_normal": ("mu", "sigma", "q"),
    "log_normal": ("mu", "sigma"),
    "q_log_normal": ("mu", "sigma", "q"),
    "beta": ("a", "b"),
    "q_beta": ("a", "b", "q"),
}
REQUIRED = {"constant": ("value",), "categorical": ("values",),
            "categorical_w_probabilities": ("values", "probabilities")}
POSITIVE_MIN = ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values")
# W&B's grid search accepts these and no other (wandb/sweeps search/grid.py).
GRID_OK = ("constant", "categorical", "int_uniform", "q_uniform")
DEFAULT_TRIALS = SweepSpec.trials
NATIVE_FLAG_KEYS = ("when", "log", "int", "step")  # a flags file's, never W&B's
NO_RUN_CAP = "no run_cap:"  # the note's start: --trials makes it moot


def is_wandb(data: Any) -> bool:
    """A W&B sweep configuration by its shape: top-level ``parameters:`` and no ``flags:``."""
    return isinstance(data, dict) and "parameters" in data and "flags" not in data


class Params:
    """W&B parameter mappings -> flags. ``method`` is the W&B method (grid turns int_uniform
    and q_uniform into lists, as W&B's grid does)."""

    def __init__(self, checker: _Checker, method: str = "random") -> None:
        self.c = checker
        self.method = method
        self.notes: list[str] = []  # what runs as W&B says but likely not as meant

    def error(self, key: str, rule: str) -> SpecError:
        return self.c.error(key, rule)

    def flags(self, raw: Any, prefix: str = "parameters", group: str = "") -> list[Flag]:
        if not isinstance(raw, dict) or not raw:
            got = "an empty mapping" if raw == {} else _kind(raw)
            raise self.error(prefix, f"must be a mapping of at least one parameter name, got {got}")
        out: list[Flag] = []
        for name, spec in raw.items():
            key = f"{prefix}.{name}"
            if not isinstance(name, str) or not FLAG_NAME_RE.match(name):
                raise self.error(key, FLAG_NAME_RULE)
            full = f"{group}.{name}" if group else name
            if isinstance(spec, dict) and "parameters" in spec:
                extra = sorted(map(str, set(spec) - {"parameters"}))
                if extra:
                    raise self.error(f"{key}.{extra[0]}", "unknown key; a nested parameter takes only 'parameters'")
                out += self.flags(spec["parameters"], f"{key}.parameters", full)
            else:
                out.append(self.flag(key, full, spec))
        return out

    def flag(self, key: str, name: str, raw: Any) -> Flag:
        if not isinstance(raw, dict):
            raise self.error(key, "must be a mapping with value, values, min/max or distribution; "
                             f"got {_kind(raw)}")
        dist = raw["distribution"] if "distribution" in raw else self.inferred(key, raw)
        if not isinstance(dist, str) or dist not in DISTRIBUTIONS:
            raise self.error(f"{key}.distribution", f"unknown distribution {dist!r}; one of {', '.join(DISTRIBUTIONS)}")
        allowed = {"distribution", *DISTRIBUTIONS[dist]}
        for k in raw:
            if k not in allowed:
                raise self.error(f"{key}.{k}", f"unknown key for distribution {dist}; it takes "
                                 f"{', '.join(DISTRIBUTIONS[dist])}{_hint(dist, k, self.c.path)}")
        needed = REQUIRED.get(dist, ("min", "max") if "min" in DISTRIBUTIONS[dist] else ())
        for k in needed:
            if k not in raw:
                raise self.error(key, f"distribution {dist} needs '{k}'")
        if self.method == "grid" and dist not in GRID_OK:
            raise self.error(key, f"grid search takes only {', '.join(GRID_OK)} parameters "
                             f"(W&B's rule), not {dist}")
        if dist == "constant":
            return Flag(name, "fixed", (self.value(f"{key}.value", raw["value"]),))
        if dist in ("categorical", "categorical_w_probabilities"):
            return self.categorical(key, name, dist, raw)
        return self.numeric(key, name, dist, raw)

    def inferred(self, key: str, raw: dict) -> str:
        """W&B's default distribution: the keys given say which."""
        if "values" in raw:
            return "categorical_w_probabilities" if "probabilities" in raw else "categorical"
        if "value" in raw:
            return "constant"
        if "min" in raw and "max" in raw:
            ints = all(isinstance(raw[k], int) and not isinstance(raw[k], bool) for k in ("min", "max"))
            return "int_uniform" if ints else "uniform"
        raise self.error(key, "a parameter needs value, values, min and max, or a distribution")

    def value(self, key: str, value: Any) -> Any:
        """A W&B value: any YAML value but a NaN or an infinity (no command line carries one)."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value}")
        if isinstance(value, (bool, int, float)) or value is None:
            return value
        if isinstance(value, str):
            return self.c.scalar(key, value)
        if isinstance(value, list):
            return [self.value(f"{key}[{i}]", v) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {str(k): self.value(f"{key}.{k}", v) for k, v in value.items()}
        raise self.error(key, f"must be a plain YAML value, got {_kind(value)}")

    def categorical(self, key: str, name: str, dist: str, raw: dict) -> Flag:
        values = raw["values"]
        if not isinstance(values, list) or not values:
            raise self.error(f"{key}.values", "must be a list of at least one value")
        values = [self.value(f"{key}.values[{i}]", v) for i, v in enumerate(values)]
        if dist == "categorical_w_probabilities":
            if self.method == "grid":
                raise self.error(f"{key}.probabilities", "grid search takes no probabilities (W&B's rule)")
            probs = raw["probabilities"]
            if not isinstance(probs, list) or len(probs) != len(values):
                raise self.error(f"{key}.probabilities", f"must be a list of {len(values)} numbers, "
                                 "one per value")
            ps = tuple(float(self.c.number(f"{key}.probabilities[{i}]", p)) for i, p in enumerate(probs))
            if any(p < 0 for p in ps):
                raise self.error(f"{key}.probabilities", "must not be negative")
            if abs(sum(ps) - 1.0) > 1e-6:
                raise self.error(f"{key}.probabilities", f"must sum to 1, got {sum(ps):g}")
            d = dists.Dist(dist, probabilities=ps)
            return Flag(name, "range", tuple(values), low=0.0, high=1.0, dist=d)
        plain = all(isinstance(v, (bool, int, float, str)) or v is None for v in values)
        seen = {(type(v), v) for v in values} if plain else set()
        if plain and len(seen) == len(values) and None not in values:
            return Flag(name, "choice", tuple(values))
        # Lists, mappings or repeats, which Optuna's categorical cannot hold: draw the index.
        return Flag(name, "range", tuple(values), low=0, high=len(values) - 1, is_int=True,
                    dist=dists.Dist("categorical"))

    def numeric(self, key: str, name: str, dist: str, raw: dict) -> Flag:
        num = {k: self.c.number(f"{key}.{k}", raw[k]) for k in raw if k not in ("distribution", "q")}
        q: int | float = 1.0
        if "q" in raw:
            whole = isinstance(raw["q"], int) and not isinstance(raw["q"], bool)
            q = raw["q"] if whole else self.c.number(f"{key}.q", raw["q"])
            if q <= 0:
                raise self.error(f"{key}.q", f"must be greater than 0, got {q}")
        low, high = num.get("min", 0.0), num.get("max", 0.0)
        if "min" in num and not low < high:
            raise self.error(key, f"min ({low:g}) must be less than max ({high:g})")
        if dist in POSITIVE_MIN and low <= 0:
            raise self.error(f"{key}.min", f"{dist} needs min above 0, got {low:g}")
        if num.get("sigma", 1.0) < 0:
            raise self.error(f"{key}.sigma", f"must be at least 0, got {num['sigma']:g}")
        for k in ("a", "b"):
            if num.get(k, 1.0) <= 0:
                raise self.error(f"{key}.{k}", f"must be greater than 0, got {num[k]:g}")
        if dist == "int_uniform":
            for k in ("min", "max"):
                if isinstance(raw[k], bool) or not isinstance(raw[k], int):
                    raise self.error(f"{key}.{k}", f"int_uniform needs whole numbers, got {raw[k]!r}")
            return Flag(name, "range", low=int(low), high=int(high), is_int=True)
        if dist == "uniform":
            return Flag(name, "range", low=float(low), high=float(high))
        if dist == "log_uniform_values":
            return Flag(name, "range", low=float(low), high=float(high), log=True)
        if dist in ("log_uniform", "q_log_uniform") and max(abs(low), abs(high)) > 700:
            raise self.error(key, f"{dist}'s min and max are natural-log exponents; exp({high:g}) overflows")
        if dist in ("log_uniform", "q_log_uniform") and 0 < low < high <= 1:
            self.notes.append(f"{key}: {dist}'s min and max are exponents: values from exp({low:g}) to "
                              f"exp({high:g}) (log_uniform_values takes the values themselves)")
        if dist == "q_uniform" and self.method == "grid":
            return self.grid_q_uniform(key, name, low, high, q)
        d = dists.Dist(dist, q=q, mu=num.get("mu", 0.0), sigma=num.get("sigma", 1.0), a=num.get("a", 1.0),
                       b=num.get("b", 1.0), low=low, high=high)
        under_low, under_high, log = dists.underlying(d)
        return Flag(name, "range", low=under_low, high=under_high, log=log, dist=d)

    def grid_q_uniform(self, key: str, name: str, low: float, high: float, q: int | float) -> Flag:
        """W&B's grid lists a q_uniform as ``numpy.arange(min, max, q)``: max itself is left out."""
        count = math.ceil((high - low) / q)
        if count > 1_000_000:
            raise self.error(key, f"q_uniform lists {count:,} grid values; at most 1,000,000")
        values: list[int | float] = [low + i * q for i in range(count)]
        if all(isinstance(v, int) for v in (low, high, q)):
            values = [int(v) for v in values]
        return Flag(name, "choice", tuple(values))


def parse(data: dict, path: Path, space_only: bool = False) -> SweepSpec:
    """The spec of a W&B file; ``space_only`` leaves out ``program:`` and ``command:``, for a
    reader of an old sweep's snapshot whose script may have moved (only the space counts)."""
    c = _Checker(path)
    for key in data:
        if isinstance(key, str) and key in NATIVE_KEYS and key not in TOP_KEYS:
            raise c.error(key, f"a flags-file key, not a W&B one{_native(path)}")
        if not isinstance(key, str) or key not in TOP_KEYS:
            raise c.error(str(key), "unknown key in a W&B sweep configuration; known keys: "
                          f"{', '.join(sorted(TOP_KEYS))}")
    notes: list[str] = []
    method = data.get("method")
    if method is None:
        raise c.error("method", "missing: a W&B sweep needs method: grid, random or bayes")
    if method == "custom":
        raise c.error("method", "custom runs W&B's scheduler (Launch); use grid, random or bayes")
    method = c.choice("method", method, tuple(METHODS))
    if "metrics" in data:
        raise c.error("metrics", "several objectives need W&B's custom scheduler; give one 'metric:'")
    kw: dict[str, Any] = {"sampler": METHODS[method]}
    if method == "bayes":
        notes.append("method bayes: Optuna's TPE sampler models the space (W&B's Gaussian process does not run here)")
    if "metric" in data:
        kw.update(_metric(c, data["metric"], notes, method))
    elif method == "bayes" or "early_terminate" in data:
        raise c.error("metric", f"missing: {'method bayes' if method == 'bayes' else 'early_terminate'} needs a metric")
    else:  # W&B's random and grid need none: a trial completes when it exits 0
        kw.update(metric=NO_METRIC, goal_given=False)
    params = Params(c, method)
    flags = tuple(params.flags(data.get("parameters")))
    notes += params.notes
    names = [f.name for f in flags]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise c.error("parameters", f"{dup} is named twice (a nested parameter and a dotted name)")
    script = None if space_only else _program(c, data)
    if space_only:
        pass
    elif "command" in data:
        words = data["command"]
        if isinstance(words, list):  # W&B's agent writes str(chunk): a number is a word too
            words = [str(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else w for w in words]
        kw["command"] = c.command(words, script, None)
    elif script is None:
        raise c.error("program", "missing: name the training script (relative to this file)")
    if "run_cap" in data:
        kw["trials"] = c.integer("run_cap", data["run_cap"], low=1)
    elif method != "grid":
        notes.append(f"{NO_RUN_CAP} {DEFAULT_TRIALS} trials (W&B would run until stopped; --trials N for more)")
    if "early_terminate" in data:
        kw["pruner"] = _hyperband(c, data["early_terminate"], notes)
    text = [data[k] for k in ("name", "description") if k in data]
    for k in ("name", "description"):
        if k in data and not isinstance(data[k], str):
            raise c.error(k, "must be text")
    if text:
        kw["description"] = ": ".join(text)
    ignored = [k for k in SERVER_KEYS if k in data]
    if ignored:
        notes.append(f"{', '.join(ignored)}: only mean something on W&B's servers; ignored here")
    groups = tuple(sorted({f.name.split(".")[0] for f in flags if "." in f.name} & _nested(data.get("parameters"))))
    kw.setdefault("goal_given", True)
    spec = SweepSpec(path=path, script=script, module=None, flags=flags,
                     notes=tuple(notes), wandb_groups=groups, folder=_folder(path, script), **kw)
    problem = samplers.grid_problem(spec)
    if problem:
        raise c.error("method", problem)
    if method == "grid" and "run_cap" in data:
        combos = spec.combinations() or 0
        if spec.trials < combos:  # W&B stops its grid at run_cap; here a grid cut short runs in random order
            spec = dataclasses.replace(spec, sampler="random")
    return spec


def _native(path: Path) -> str:
    return f": `sweep convert {path.name} > flags.yaml` gives a flags file, which takes it"


def _hint(dist: str, key: str, path: Path) -> str:
    """What a key W&B's schema refuses was likely meant as."""
    if dist == "categorical" and key == "probabilities":
        return " (weighted values: distribution: categorical_w_probabilities, or leave distribution out)"
    if key in NATIVE_FLAG_KEYS:
        return f"; {key} is a flags-file key{_native(path)}"
    return ""


def _nested(params: Any) -> set[str]:
    return {k for k, v in params.items() if isinstance(v, dict) and "parameters" in v}


def _program(c: _Checker, data: dict) -> Path | None:
    """The program: relative to the sweep file (this tool's rule), else to the folder sweep
    runs in (W&B's: its agent runs ``program`` from its working directory, so a file kept in
    ``sweeps/`` often names a script at the project's root)."""
    if "program" not in data:
        return None
    raw = data["program"]
    if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
        raise c.error("program", f"must be a file path, got {_kind(raw)}")
    try:
        for script in dict.fromkeys([(c.path.parent / raw).resolve(), Path(raw).resolve()]):
            if script.is_file():
                return script
        if _names_program_elsewhere(data.get("command")):
            return None  # W&B's agent never opens it: the command runs the program itself
        looked = " or ".join(str(p) for p in dict.fromkeys([(c.path.parent / raw).resolve(), Path(raw).resolve()]))
        raise c.error("program", f"{raw} not found (looked for {looked})")
    except OSError as exc:
        raise c.error("program", f"{raw} cannot be used ({exc.strerror or exc})") from None


def _folder(path: Path, script: Path | None) -> Path | None:
    """Where trials run from: the sweep file's folder when the program is there, else the
    folder sweep runs in, as W&B's agent runs every trial from its own working directory."""
    if script is not None and script.is_relative_to(path.parent.resolve()):
        return None
    here = Path.cwd()
    return None if here == path.parent else here


def _names_program_elsewhere(words: Any) -> bool:
    """A ``command:`` list without ``${program}``: ``program`` is only W&B's label then."""
    return isinstance(words, list) and bool(words) and "${program}" not in words


def _metric(c: _Checker, raw: Any, notes: list[str], method: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise c.error("metric", f"must be a mapping with 'name' (and 'goal'), got {_kind(raw)}")
    for k in raw:
        if k not in METRIC_KEYS:
            raise c.error(f"metric.{k}", f"unknown key; metric takes {', '.join(sorted(METRIC_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise c.error("metric.name", f"must be the name the script logs, got {name!r}")
    out: dict[str, Any] = {"metric": name, "goal": c.choice("metric.goal", raw.get("goal", "minimize"),
                                                            ("maximize", "minimize"))}
    if "goal" not in raw:  # W&B's default; a name like val_acc is likely meant the other way
        out["goal_note"] = "W&B's default: metric has no goal"
        if infer_goal(name) == "maximize":
            notes.append(f"metric {name} has no goal, so it is minimized (W&B's default); "
                         "its name reads like one to maximize: add goal: maximize if so")
    if raw.get("target") is not None:
        out["target"] = float(c.number("metric.target", raw["target"]))
    if "impute" in raw:
        c.choice("metric.impute", raw["impute"], IMPUTE)
        notes.append("metric.impute: a failed trial is left out of the sampler's model here (Optuna's rule)")
    if "impute_while_running" in raw:
        value = raw["impute_while_running"]
        if value is not False and c.choice("metric.impute_while_running", value, (*IMPUTE, "false")) != "false":
            notes.append("metric.impute_while_running: TPE's constant liar stands in for running trials here"
                         if method == "bayes" else
                         f"metric.impute_while_running: method {method} does not look at running trials; ignored")
    return out


def _hyperband(c: _Checker, raw: Any, notes: list[str]) -> Pruner:
    """W&B's hyperband early_terminate -> Optuna's HyperbandPruner. W&B's brackets: from
    ``min_iter`` up by factors of ``eta``, or from ``max_iter`` down ``s`` times by ``eta``;
    Optuna's: ``min_resource`` up to ``max_resource`` by ``reduction_factor``."""
    key = "early_terminate"
    if not isinstance(raw, dict):
        raise c.error(key, f"must be a mapping with type: hyperband, got {_kind(raw)}")
    for k in raw:
        if k not in HYPERBAND_KEYS:
            raise c.error(f"{key}.{k}", f"unknown key; early_terminate takes {', '.join(sorted(HYPERBAND_KEYS))}")
    c.choice(f"{key}.type", raw.get("type"), ("hyperband",))
    eta = c.number(f"{key}.eta", raw.get("eta", 3))
    if eta <= 1:
        raise c.error(f"{key}.eta", f"must be greater than 1, got {eta:g}")
    factor = max(2, round(eta))
    if factor != eta:
        notes.append(f"early_terminate.eta {eta:g}: Optuna's Hyperband takes a whole factor; using {factor}")
    if "strict" in raw:
        c.boolean(f"{key}.strict", raw["strict"])
    if "min_iter" in raw:
        low = c.integer(f"{key}.min_iter", raw["min_iter"], low=1)
        high: int | str = "auto"
        if "max_iter" in raw:
            high = c.integer(f"{key}.max_iter", raw["max_iter"], low=low)
        return Pruner("hyperband", min_resource=low, max_resource=high, reduction_factor=factor, count="value")
    if "max_iter" not in raw or "s" not in raw:
        raise c.error(key, "hyperband needs min_iter, or max_iter and s")
    top = c.integer(f"{key}.max_iter", raw["max_iter"], low=1)
    s = c.number(f"{key}.s", raw["s"])
    bands, band = [], float(top)
    for _ in range(int(s)):
        band /= eta
        if band < 1:
            break
        bands.append(int(band))
    if not bands:
        raise c.error(key, "no bracket: max_iter / eta is below 1; raise max_iter or s, or lower eta")
    return Pruner("hyperband", min_resource=min(bands), max_resource=top, reduction_factor=factor, count="value")
