"""Flags file (YAML) -> a frozen ``SweepSpec``. Pure: reads one file, runs nothing.

Every mistake raises ``SpecError`` with one line naming the file, the key and the rule.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sweep import command, conditions, dists, launch, samplers, words, workdir
from sweep.conditions import Condition
from sweep.errors import SpecError
from sweep.objectives import Constraint, parse_constraint
from sweep.parse import name_words

# The names come from the tables that build them: a new sampler is one entry there.
SAMPLERS = tuple(samplers.SAMPLERS)
PRUNERS = tuple(samplers.PRUNERS)
LAUNCHERS = tuple(launch.LAUNCHERS)
GOALS = ("maximize", "minimize")
NO_METRIC = ""  # SweepSpec.metric of a sweep without an objective: trials complete on exit 0
NO_OBJECTIVE_SAMPLERS = ("random", "grid")  # the samplers that need no value to draw the next trial
MAX_BYTES = 1 << 20
TOP_KEYS = {
    "script", "module", "flags", "trials", "sampler", "seed", "metric", "goal", "jobs",
    "timeout", "smoke", "metrics", "launcher", "pruner", "baseline_error", "max_failures",
    "description", "command", "workdir", "constraints", "enqueue",
    "target", "repeats", "seed_flag",
}
SMOKE_KEYS = {"trials", "flags", "timeout", "jobs", "seed", "sampler", "pruner", "max_failures"}
RANGE_KEYS = {"min", "max", "log", "int", "step"}
PRUNER_KEYS = {"name", "warmup_steps", "startup_trials", "min_resource", "max_resource",
               "reduction_factor", "count"}
PRUNER_COUNTS = ("step", "value")
# \Z, not $: "$" also matches before a trailing newline ("lr\n" is not a flag name).
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# A metric as wandb.log names it too: "val/loss", "val.acc", "ndcg@10".
METRIC_NAME_RE = re.compile(r"^[A-Za-z_]\S*\Z")
# A flag is named as the script spells its option, passed verbatim: ``learning-rate`` for
# argparse's dashes, ``trainer.lr`` for config-override parsers. Never a leading ``-`` or ``.``.
FLAG_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\Z")
FLAG_NAME_RULE = ("a flag name is the script's option without its leading dashes: letters, digits, "
                  "_, - and ., starting with a letter or _")
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
# YAML 1.1 (PyYAML) reads 1e-5 as a string: teach the loader the forms people write.
# The mantissa needs a digit: "-e5" or ".e5" stay text (float() cannot read them).
FLOAT_RE = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
MAX_SEED = 2**32 - 1  # numpy's RandomState, under Optuna's samplers, takes no more
MAX_REPEATS = 1000  # runs per configuration
MAX_STEPS = 1e15  # a stepped float range with more points breaks Optuna's Decimal arithmetic

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Flag:
    """One flag of the search space.

    kind ``choice``: one of ``values``; ``range``: ``low``..``high`` (``log``, ``is_int``,
    ``step``); ``fixed``: ``values[0]`` for every trial. A ``switch`` is a true/false flag
    given as bare words: ``words`` (when true, when false; "" for nothing), found from the
    script's parser (``sweep.introspect``), else ``--name`` when true and nothing when false
    (argparse ``store_true``).
    """

    name: str
    kind: str
    values: tuple[Scalar, ...] = ()
    low: float = 0.0  # a range's bounds; unused by the other kinds
    high: float = 0.0
    log: bool = False
    is_int: bool = False
    step: float | None = None
    switch: bool = False
    words: tuple[str, str] | None = None
    when: Condition | None = None  # passed only when this holds (sweep.conditions)
    dist: dists.Dist | None = None  # a W&B distribution: low..high is what Optuna draws (sweep.dists)

    def switch_words(self, value: Any) -> list[str]:
        """The bare words a switch gives for ``value`` (none, or one)."""
        on, off = self.words or (f"--{self.name}", "")
        word = on if value else off
        return [word] if word else []

    def grid_values(self) -> list[Any] | None:
        """Every value the flag can take, or None for a float range (no finite list)."""
        if self.kind == "range":
            if not self.is_int or self.log:
                return None
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        return list(self.values)


@dataclass(frozen=True)
class Pruner:
    name: str = "none"
    warmup_steps: int = 0
    startup_trials: int = 5
    min_resource: int = 1
    max_resource: int | str = "auto"
    reduction_factor: int = 3
    # What the pruner's step is: the step the value was logged at, or "value": the number of
    # the objective's values before it (W&B's hyperband counts values, whatever their step).
    count: str = "step"


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    script: Path | None
    module: str | None
    flags: tuple[Flag, ...]
    trials: int = 10
    sampler: str = "random"
    seed: int | None = None
    metric: str = "eval_accuracy"
    goal: str = "maximize"
    goal_given: bool = False  # goal: was in the flags file (else inferred from the metric's name)
    goal_note: str | None = None  # where the goal came from when neither (a W&B file: its default)
    jobs: int | str = 1
    timeout: float | None = None
    smoke: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[tuple[str, str], ...] = ()
    launcher: str = "fork"
    pruner: Pruner = Pruner()
    baseline_error: float = 0.0
    max_failures: int | None = None
    description: str | None = None
    command: tuple[str, ...] | None = None  # the command line's words, macros unfilled (sweep.command)
    workdir: str = "isolated"  # or "inplace": run in the folder itself (sweep.workdir)
    # Several objectives: every (metric, goal) in order, the first also as metric/goal above;
    # empty for one objective. Constraints: what a feasible run's metrics meet.
    objectives: tuple[tuple[str, str], ...] = ()
    constraints: tuple[Constraint, ...] = ()
    enqueue: tuple[dict[str, Any], ...] = ()  # configurations tried first (partial: the rest sampled)
    notes: tuple[str, ...] = ()  # said once at the start of a run (a W&B file's ignored keys)
    target: float | None = None  # stop the sweep once a trial's metric reaches this (W&B's metric.target)
    wandb_groups: tuple[str, ...] = ()  # W&B nested parameters: wandb.config nests flags "group.name"
    folder: Path | None = None  # where trials run from, when not the file's folder (a W&B file: sweep.wbsweep)
    repeats: int = 1  # runs per configuration, each with its own seed (sweep.seeds); trials counts configurations
    seed_flag: str | None = None  # the script's seed option, given each repeat's seed
    first_repeat: int = 0  # the first seed index (a rerun starts past its parent's seeds)
    rerun_of: str | None = None  # the sweep a `sweep rerun` reruns
    # The flags file as it was read: each run's snapshot keeps these bytes, whatever the file
    # says by the time the run starts (the sweep never reads it again).
    source: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.folder or self.path.parent

    def targets(self) -> tuple[tuple[str, str], ...]:
        """Every objective as (metric, goal), the first first: one for a single objective."""
        return self.objectives or ((self.metric, self.goal),)

    def flag(self, name: str) -> Flag:
        for f in self.flags:
            if f.name == name:
                return f
        raise KeyError(name)

    def combinations(self) -> int | None:
        """Number of distinct points when every flag is a list or fixed; else None. With
        conditional flags, only the points that can occur (a flag left out is one point)."""
        if conditions.conditional(self.flags):
            if any(f.grid_values() is None for f in self.flags):
                return None
            return conditions.count(self.flags, lambda f: f.grid_values() or [])
        total = 1
        for f in self.flags:
            if f.kind == "range":
                if not f.is_int or f.log:
                    return None
                step = int(f.step or 1)
                total *= int((f.high - f.low) // step) + 1
            elif f.kind == "choice":
                total *= len(f.values)
        return total

    def with_smoke(self) -> SweepSpec:
        """The spec with its ``smoke:`` overrides applied (for ``--smoke``)."""
        smoke = dict(self.smoke)
        if "trials" not in smoke:
            smoke["trials"] = 2
        flags = smoke.pop("flags", {}) or {}
        changes: dict[str, Any] = dict(smoke)
        if flags:
            changes["flags"] = tuple(flags.get(f.name, f) for f in self.flags)
        return dataclasses.replace(self, **changes)


def override(spec: SweepSpec, assignment: str) -> SweepSpec:
    """Apply ``--set NAME=VALUE``: VALUE is read as YAML (a scalar fixes the flag, a list or a
    range mapping searches it) and checked by the flags file's own rules."""
    name, eq, text = assignment.partition("=")
    name = name.strip()
    known = [f.name for f in spec.flags]
    if not eq or not name:
        raise SpecError(f"--set {assignment!r}: write NAME=VALUE, e.g. --set seed=1")
    if name not in known:
        raise SpecError(f"--set {name}: not a flag of {spec.path}; flags: {', '.join(known)}")
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise SpecError(f"--set {name}: cannot read {shown!r} as a value") from None
    except RecursionError:  # PyYAML's parser recurses once per level: "[[[[..." 50,000 deep
        raise SpecError(f"--set {name}: the value is nested too deeply") from None
    checker = _Checker(spec.path)
    checker.path = Path(f"--set {name}")  # errors name the option, not the file
    flag = checker.flag(name, raw if raw is not None else "")
    flag = dataclasses.replace(flag, switch=spec.flag(name).switch or flag.switch,
                               when=flag.when or spec.flag(name).when)
    return dataclasses.replace(spec, flags=tuple(flag if f.name == name else f for f in spec.flags))


# ---------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """Safe loading, plus: duplicate keys are an error and ``1e-5`` is a number."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's constructors raise plain ValueError/KeyError/... on values such as
        # 2020-13-45 or !!int abc: turn them into YAML errors with the line.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            value = f" {node.value!r}"[:60] if isinstance(node, yaml.ScalarNode) else ""
            detail = f" ({exc})" if isinstance(exc, (ValueError, OverflowError)) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read{value} as {kind}{detail}", node.start_mark) from None


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", FLOAT_RE, list("-+0123456789.")
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *defaults": construct_mapping merges
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_error(path: Path, exc: yaml.YAMLError, text: str = "") -> SpecError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = " ".join(str(problem).split())
    if "got '{'" in problem and "${" in text:  # [${interpreter}, ...]: braces end a flow list's word
        problem += "; write a command's macros one '- ${...}' a line, or quote them"
    return SpecError(f"{path}: {where}invalid YAML ({problem})")


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(path: Path, mode: int) -> SpecError:
    if stat.S_ISDIR(mode):
        return SpecError(f"{path}: is a directory, not a flags file")
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "an unknown kind of file")
    return SpecError(f"{path}: not a regular file ({kind}); a flags file must be a regular file")


def _read_flags_file(path: Path) -> bytes:
    """The bytes of a flags file that is a regular file of at most ``MAX_BYTES``. Nothing else
    is read: a FIFO or a device (``/dev/zero``) is refused after a non-blocking open (which
    never waits for a writer) and an fstat of what was opened, and no read asks for more
    than ``MAX_BYTES + 1`` bytes, even from a file that grows while it is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: a socket, or a device with no driver behind it
            raise
        try:
            mode = os.stat(path).st_mode
        except OSError:
            raise exc from None
        raise _not_regular(path, mode) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode)
        if info.st_size > MAX_BYTES:
            raise SpecError(f"{path}: file is {info.st_size} bytes; a flags file may be at most {MAX_BYTES}")
        os.set_blocking(fd, True)  # a regular file: plain reads (a FUSE file system may heed the flag)
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_BYTES:
        raise SpecError(f"{path}: file is over {MAX_BYTES} bytes; a flags file may be at most {MAX_BYTES}")
    return b"".join(chunks)


def read_yaml(path: Path) -> Any:
    return _read_yaml(path)[0]


def _read_yaml(path: Path) -> tuple[Any, bytes]:
    """The flags file's YAML, and its bytes."""
    try:
        raw = _read_flags_file(path)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such flags file") from None
    except PermissionError:
        raise SpecError(f"{path}: permission denied") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    if "\0" in text:
        raise SpecError(f"{path}: not a text file (contains NUL bytes)")
    try:
        return yaml.load(text, Loader=_Loader), raw
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc, text) from None
    except RecursionError:
        raise SpecError(f"{path}: invalid YAML (nested too deeply)") from None


def load(path: str | Path) -> SweepSpec:
    """Read and check a flags file. Raises ``SpecError`` on the first mistake."""
    path = Path(path).absolute()
    data, raw = _read_yaml(path)
    return dataclasses.replace(parse(data, path), source=raw)


def parse(data: Any, path: Path) -> SweepSpec:
    c = _Checker(path)
    if data is None:
        raise c.error("", "the file is empty; it needs at least 'script:' and 'flags:'")
    if not isinstance(data, dict):
        raise c.error("", f"the top level must be a mapping of keys, got {_kind(data)}")
    from sweep import wbsweep

    if wbsweep.is_wandb(data):
        return wbsweep.parse(data, path)
    for key in data:
        if not isinstance(key, str) or key not in TOP_KEYS:
            raise c.error(str(key), f"unknown key; known keys: {', '.join(sorted(TOP_KEYS))}")
    script, module = c.target(data)
    flags = c.flags(data.get("flags"))
    kw: dict[str, Any] = {}
    if "command" in data:
        kw["command"] = c.command(data["command"], script, module)
    if "trials" in data:
        kw["trials"] = c.integer("trials", data["trials"], low=1)
    if "sampler" in data:
        kw["sampler"] = c.choice("sampler", data["sampler"], SAMPLERS)
    if "seed" in data and data["seed"] is not None:
        kw["seed"] = c.integer("seed", data["seed"], low=0, high=MAX_SEED)
    kw.update(c.objectives(data))
    if "jobs" in data:
        kw["jobs"] = c.jobs("jobs", data["jobs"])
    if "timeout" in data and data["timeout"] is not None:
        kw["timeout"] = c.positive("timeout", data["timeout"])
    if "metrics" in data:
        kw["metrics"] = c.regexes(data["metrics"])
    if "launcher" in data:
        kw["launcher"] = c.choice("launcher", data["launcher"], LAUNCHERS)
    if "pruner" in data:
        kw["pruner"] = c.pruner("pruner", data["pruner"])
    if "workdir" in data:
        kw["workdir"] = c.choice("workdir", data["workdir"], workdir.SETTINGS)
    if "baseline_error" in data:
        value = c.number("baseline_error", data["baseline_error"])
        if not 0 <= value < 100:
            raise c.error("baseline_error", f"must be a percentage in [0, 100), got {value}")
        kw["baseline_error"] = value
    if "max_failures" in data and data["max_failures"] is not None:
        kw["max_failures"] = c.integer("max_failures", data["max_failures"], low=1)
    if "description" in data:
        if not isinstance(data["description"], str):
            raise c.error("description", "must be text")
        kw["description"] = data["description"]
    if "constraints" in data:
        kw["constraints"] = c.constraints(data["constraints"], flags)
    if "enqueue" in data:
        kw["enqueue"] = c.enqueue(data["enqueue"], flags)
    if data.get("target") is not None:  # stop once a trial's metric reaches it (W&B's metric.target)
        kw["target"] = float(c.number("target", data["target"]))
    kw.update(c.repeats(data, flags, kw.get("pruner", Pruner())))
    spec = SweepSpec(path=path, script=script, module=module, flags=flags, **kw)
    if "smoke" in data:
        spec = dataclasses.replace(spec, smoke=c.smoke(data["smoke"], spec))
    if spec.objectives:
        for key, pruner in (("pruner", spec.pruner), ("smoke.pruner", spec.smoke.get("pruner"))):
            if pruner is not None and pruner.name != "none":
                raise c.error(key, f"pruning needs one objective; this sweep has {len(spec.objectives)} "
                              f"({', '.join(m for m, _ in spec.objectives)}): remove the pruner")
    problem = samplers.grid_problem(spec)
    if problem:
        raise c.error("sampler", problem)
    if spec.metric == NO_METRIC:
        _check_no_objective(c, spec)
    return spec


def _check_no_objective(c: _Checker, spec: SweepSpec) -> None:
    """``metric: null`` runs only what needs no objective: random or grid, no pruner, no target."""
    if spec.sampler not in NO_OBJECTIVE_SAMPLERS:
        raise c.error("sampler", f"{spec.sampler} models the objective; with metric: null use "
                      f"{' or '.join(NO_OBJECTIVE_SAMPLERS)}")
    if spec.pruner.name != "none":
        raise c.error("pruner", "pruning compares an objective; metric: null has none")
    if spec.target is not None:
        raise c.error("target", "a target is a value of the objective; metric: null has none")


# Goal inference: a metric whose name's last word means lower-is-better is minimized. Trailing
# words that only qualify it (eval_loss_avg, test_err_rate, latency_ms, time_per_step) are
# skipped first; other names (accuracy, f1, score, bleu, tokens_per_sec, loss_scale) maximize.
LOWER_IS_BETTER = frozenset("""
    loss losses error errors err perplexity ppl mse rmse mae mape smape msle rmsle nll wer cer
    ter bpc bpd time runtime latency duration cost regret fid kl kld lpips ms sec secs seconds
    params parameters flops macs
""".split())
QUALIFIERS = frozenset("""
    avg average mean median total sum final best last min max ema smooth smoothed running rate
    ratio pct percent frac fraction count per token tokens sample samples step steps epoch
    batch iter item s ms us ns sec secs seconds minutes h hours train training val valid
    validation eval test dev all overall norm normalized raw value m k
""".split())


def infer_goal(metric: str) -> str:
    """``minimize`` when the metric's name says lower is better, else ``maximize``."""
    words = name_words(metric)
    while len(words) > 1 and (words[-1] in QUALIFIERS or words[-1].isdigit()):
        words.pop()
    last = words[-1] if words else ""
    return "minimize" if last in LOWER_IS_BETTER or last.rstrip("0123456789") in LOWER_IS_BETTER else "maximize"


def goal_source(spec: SweepSpec) -> str:
    """Where the sweep's goal came from, for the line that announces it: ``flags file`` or
    ``inferred`` (from the metric's name)."""
    return "flags file" if spec.goal_given else "inferred"


def _printable(text: str) -> str:
    """One line of printable text: keys and values from the file may hold newlines or
    control characters, and an error message must stay one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, rule: str) -> SpecError:
        where = f"{key}: " if key else ""
        return SpecError(_printable(f"{self.path}: {where}{rule}"))

    def target(self, data: dict) -> tuple[Path | None, str | None]:
        if "script" in data and "module" in data:
            raise self.error("script", "give either 'script' or 'module', not both")
        if "module" in data:
            if "command" in data:
                raise self.error("module", "give 'module' only without 'command:'; write it into the "
                                 "command instead: ${interpreter}, -m, pkg.train, ${args}")
            mod = data["module"]
            if not isinstance(mod, str) or not MODULE_RE.match(mod):
                raise self.error("module", f"must be a dotted module name, got {mod!r}")
            return None, mod
        if "script" not in data:
            if "command" in data:
                return None, None  # the command names its program itself
            raise self.error("script", "missing: name the training script (relative to this file)")
        raw = data["script"]
        if not isinstance(raw, str) or not raw.strip():
            raise self.error("script", f"must be a file path, got {_kind(raw)}")
        if "\0" in raw:
            raise self.error("script", "contains a NUL byte")
        try:
            script = (self.path.parent / raw).resolve()
            if not script.exists():
                raise self.error("script", f"{raw} not found (looked for {script})")
            if not script.is_file():
                raise self.error("script", f"{raw} is not a file ({script})")
        except (OSError, RuntimeError) as exc:  # name too long, symlink loop, ...
            reason = getattr(exc, "strerror", None) or exc
            raise self.error("script", f"{raw} cannot be used ({reason})") from None
        return script, None

    def command(self, raw: Any, script: Path | None, module: str | None) -> tuple[str, ...]:
        example = "a list of words, e.g. ${interpreter}, ${program}, ${args}, one '- word' a line"
        if not isinstance(raw, list):
            raise self.error("command", f"must be {example}; got {_kind(raw)}")
        if not raw:
            raise self.error("command", f"an empty list: give the command line as {example}")
        known = ", ".join(f"${{{name}}}" for name in command.MACROS)
        for i, word in enumerate(raw):
            key = f"command[{i}]"
            if not isinstance(word, str):
                plain = isinstance(word, (int, float)) and not isinstance(word, bool)
                quote = f"; quote it: '{word}'" if plain else ""
                raise self.error(key, f"must be text, got {_kind(word)}{quote}")
            if "\0" in word:
                raise self.error(key, "contains a NUL byte")
            name = command.macro(word)
            if name is not None and name not in command.MACROS:
                raise self.error(key, f"unknown macro {word}; the macros are {known}")
            if name == "program" and script is None:
                raise self.error(key, "${program} stands for 'script:', which is missing")
        if not raw[0] or command.macro(raw[0]) not in (None, "interpreter", "program", "env"):
            raise self.error("command[0]", f"must name the program to run, got {raw[0]!r}")
        return tuple(raw)

    def flags(self, raw: Any) -> tuple[Flag, ...]:
        if raw is None:
            raise self.error("flags", "missing or empty: declare at least one flag")
        if not isinstance(raw, dict):
            raise self.error("flags", f"must be a mapping of flag names, got {_kind(raw)}")
        if not raw:
            raise self.error("flags", "missing or empty: declare at least one flag")
        flags = tuple(self.flag(name, value) for name, value in raw.items())
        self.conditions(flags)
        return flags

    def flag(self, name: Any, raw: Any) -> Flag:
        key = f"flags.{name}"
        if not isinstance(name, str) or not FLAG_NAME_RE.match(name):
            raise self.error(key, FLAG_NAME_RULE)
        if isinstance(raw, list):
            if any(isinstance(v, dict) and "when" in v for v in raw):
                raise self.error(key, "a list with a condition is written {values: [...], when: '...'}")
            return Flag(name, "choice", self.values(key, raw))
        if isinstance(raw, dict):
            return self.mapping_flag(key, name, raw)
        return Flag(name, "fixed", (self.scalar(key, raw),))

    def mapping_flag(self, key: str, name: str, raw: dict) -> Flag:
        if "when" not in raw:
            return self.plain_mapping_flag(key, name, raw)
        rest = {k: v for k, v in raw.items() if k != "when"}
        if not rest:
            raise self.error(key, "a flag with 'when:' still needs its values: 'values: [...]', "
                             "'value: x' or min/max")
        flag = self.plain_mapping_flag(key, name, rest)
        return dataclasses.replace(flag, when=self.condition(f"{key}.when", raw["when"]))

    def plain_mapping_flag(self, key: str, name: str, raw: dict) -> Flag:
        if "distribution" in raw or "probabilities" in raw:  # W&B's form, in a flags file too
            from sweep import wbsweep

            return wbsweep.Params(self).flag(key, name, raw)
        switch = raw.get("switch", False)
        if not isinstance(switch, bool):
            raise self.error(f"{key}.switch", f"must be true or false, got {raw['switch']!r}")
        if "values" in raw or "value" in raw:
            extra = set(raw) - {"values", "value", "switch"}
            if extra or ("values" in raw and "value" in raw):
                bad = sorted(map(str, extra)) or ["value"]
                raise self.error(f"{key}.{bad[0]}", "unknown key here; use 'values' (a list) "
                                 "or 'value', with optional 'switch'")
            if "values" in raw:
                if not isinstance(raw["values"], list):
                    raise self.error(f"{key}.values", f"must be a list, got {_kind(raw['values'])}")
                flag = Flag(name, "choice", self.values(f"{key}.values", raw["values"]), switch=switch)
            else:
                flag = Flag(name, "fixed", (self.scalar(f"{key}.value", raw["value"]),), switch=switch)
            self.check_switch(key, flag)
            return flag
        if switch:
            raise self.error(key, "a switch needs 'values: [true, false]' or 'value: true'")
        return self.range_flag(key, name, raw)

    def check_switch(self, key: str, flag: Flag) -> None:
        if flag.switch and not all(isinstance(v, bool) for v in flag.values):
            raise self.error(key, "a switch takes only true/false values")

    def range_flag(self, key: str, name: str, raw: dict) -> Flag:
        for k in raw:
            if k not in RANGE_KEYS:
                raise self.error(f"{key}.{k}", f"unknown key; a range takes {', '.join(sorted(RANGE_KEYS))}")
        if "min" not in raw or "max" not in raw:
            missing = "min" if "min" not in raw else "max"
            raise self.error(key, f"a range needs both min and max ({missing} is missing)")
        low = self.number(f"{key}.min", raw["min"])
        high = self.number(f"{key}.max", raw["max"])
        log = self.boolean(f"{key}.log", raw.get("log", False))
        is_int = self.boolean(f"{key}.int", raw.get("int", False))
        step = None
        if raw.get("step") is not None:
            step = self.number(f"{key}.step", raw["step"])
            if step <= 0:
                raise self.error(f"{key}.step", f"must be greater than 0, got {step:g}")
            if log:
                raise self.error(f"{key}.step", "cannot be combined with log: true")
            if is_int and step != int(step):
                raise self.error(f"{key}.step", f"must be a whole number for an int range, got {step:g}")
            if step > high - low and high > low:
                raise self.error(f"{key}.step", f"step {step:g} is larger than the range {low:g}..{high:g}")
        if low >= high:
            raise self.error(key, f"min ({low:g}) must be less than max ({high:g})")
        if log and low <= 0:
            raise self.error(key, f"a log range must stay above 0, got min {low:g}")
        if not is_int and not math.isfinite(float(high) - float(low)):
            raise self.error(key, f"the range {low:g}..{high:g} is too wide (max - min overflows)")
        if step is not None and not is_int and (high - low) / step > MAX_STEPS:
            raise self.error(f"{key}.step", f"step {step:g} is too small for the range {low:g}..{high:g} "
                             f"(more than {MAX_STEPS:g} steps)")
        if is_int and (low != int(low) or high != int(high)):
            raise self.error(key, f"an int range needs whole-number bounds, got {low:g}..{high:g}")
        if is_int:
            low, high = int(low), int(high)
            step = None if step is None else int(step)
        return Flag(name, "range", low=low, high=high, log=log, is_int=is_int, step=step)

    def values(self, key: str, raw: list) -> tuple[Scalar, ...]:
        if not raw:
            raise self.error(key, "an empty list: give at least one value")
        values = tuple(self.scalar(f"{key}[{i}]", v) for i, v in enumerate(raw))
        # Keyed by type and value, one set lookup each: 1, 1.0 and True stay three values
        # (equal, but of different types) and 0.0 and -0.0 are one (NaN never gets here).
        seen: set[tuple[type, Scalar]] = set()
        for v in values:
            if (type(v), v) in seen:
                raise self.error(key, f"value {v!r} is listed twice")
            seen.add((type(v), v))
        return values

    def scalar(self, key: str, value: Any) -> Scalar:
        if isinstance(value, bool) or isinstance(value, int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.error(key, f"must be a finite number, got {value}")
            return value
        if isinstance(value, str):
            if "\0" in value:
                raise self.error(key, "contains a NUL byte")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise self.error(key, "is not valid Unicode text (a lone surrogate)") from None
            return value
        raise self.error(key, f"must be a number, text or true/false, got {_kind(value)}")

    def number(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise self.error(key, f"must be a number, got {value!r}") from None
            else:
                raise self.error(key, f"must be a number, got {_kind(value)}")
        try:
            float(value)
        except OverflowError:
            raise self.error(key, f"is too large a number ({len(str(value))} digits)") from None
        if not math.isfinite(value):
            raise self.error(key, f"must be a finite number, got {value}")
        return value

    def positive(self, key: str, value: Any) -> float:
        number = self.number(key, value)
        if number <= 0:
            raise self.error(key, f"must be greater than 0, got {number:g}")
        return number

    def integer(self, key: str, value: Any, low: int | None = None, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a whole number, got {_kind(value)} {value!r}")
        if low is not None and value < low:
            raise self.error(key, f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise self.error(key, f"must be at most {high}, got {value}")
        return value

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def choice(self, key: str, value: Any, options: tuple[str, ...]) -> str:
        if value not in options or not isinstance(value, str):
            raise self.error(key, f"must be one of {', '.join(options)}; got {value!r}")
        return value

    def name(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not METRIC_NAME_RE.match(value) or not value.isprintable():
            raise self.error(key, f"must be a metric name (a letter or _, then no spaces), got {value!r}")
        return value

    def objectives(self, data: dict) -> dict[str, Any]:
        """``metric:`` and ``goal:``: one name and goal, or a list of each for several
        objectives (a goal left out is inferred per metric)."""
        raw_metric = data.get("metric", SweepSpec.metric)
        raw_goal = data.get("goal")
        if raw_metric is None:  # metric: null: no objective (a W&B random or grid file without metric:)
            if "goal" in data:
                raise self.error("goal", "a goal needs a metric; metric: null means the sweep has no objective")
            return {"metric": NO_METRIC, "goal": "maximize", "goal_given": False}
        if not isinstance(raw_metric, list):
            if isinstance(raw_goal, list):
                raise self.error("goal", "a list of goals needs a list of metrics, one goal each")
            metric = self.name("metric", raw_metric)
            goal = self.choice("goal", raw_goal, GOALS) if "goal" in data else infer_goal(metric)
            return {"metric": metric, "goal": goal, "goal_given": "goal" in data}
        if not raw_metric:
            raise self.error("metric", "an empty list: name at least one metric")
        names = [self.name(f"metric[{i}]", m) for i, m in enumerate(raw_metric)]
        twice = next((m for i, m in enumerate(names) if m in names[:i]), None)
        if twice:
            raise self.error("metric", f"{twice!r} is listed twice")
        if "goal" not in data:
            goals = [infer_goal(m) for m in names]
        elif not isinstance(raw_goal, list) or len(raw_goal) != len(names):
            got = words.count(len(raw_goal), "goal") if isinstance(raw_goal, list) else repr(raw_goal)
            raise self.error("goal", f"give one goal per metric: a list of {len(names)}, "
                             f"each maximize or minimize; got {got}")
        else:
            goals = [self.choice(f"goal[{i}]", g, GOALS) for i, g in enumerate(raw_goal)]
        out: dict[str, Any] = {"metric": names[0], "goal": goals[0], "goal_given": "goal" in data}
        if len(names) > 1:
            out["objectives"] = tuple(zip(names, goals, strict=True))
        return out

    def constraints(self, raw: Any, flags: tuple[Flag, ...]) -> tuple[Constraint, ...]:
        example = "a list such as ['params_m <= 5', 'latency_ms < 20']"
        if not isinstance(raw, list):
            raise self.error("constraints", f"must be {example}; got {_kind(raw)}")
        if not raw:
            raise self.error("constraints", f"an empty list: give {example}, or leave the key out")
        out: list[Constraint] = []
        for i, text in enumerate(raw):
            key = f"constraints[{i}]"
            if not isinstance(text, str):
                raise self.error(key, f"must be text such as 'latency_ms < 20', got {_kind(text)}")
            try:
                found = parse_constraint(text)
            except ValueError as exc:
                raise self.error(key, str(exc)) from None
            if found in out:
                raise self.error(key, f"{found} is listed twice")
            if any(f.name == found.metric for f in flags):
                # Known before any trial runs: bound the flag's own range instead.
                raise self.error(key, f"{found.metric} is a flag, not a metric the script reports; "
                                 "a constraint bounds a result (narrow the flag's range to bound the flag)")
            out.append(found)
        return tuple(out)

    def jobs(self, key: str, value: Any) -> int | str:
        if value == "auto":
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(key, f"must be a whole number of at least 1 or 'auto', got {value!r}")
        return value

    def regexes(self, raw: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(raw, dict) or not raw:
            raise self.error("metrics", "must be a mapping of metric name -> regex")
        out = []
        for name, pattern in raw.items():
            key = f"metrics.{name}"
            self.name(key, name)
            if not isinstance(pattern, str):
                raise self.error(key, f"must be a regex (text), got {_kind(pattern)}")
            try:
                compiled = re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                raise self.error(key, f"invalid regex ({exc})") from None
            if compiled.groups < 1:
                raise self.error(key, "the regex needs a capture group around the number")
            out.append((name, pattern))
        return tuple(out)

    def pruner(self, key: str, raw: Any) -> Pruner:
        if isinstance(raw, str) or raw is None:
            return Pruner(self.choice(key, raw, PRUNERS))
        if not isinstance(raw, dict):
            raise self.error(key, f"must be a pruner name or a mapping with 'name', got {_kind(raw)}")
        for k in raw:
            if k not in PRUNER_KEYS:
                raise self.error(f"{key}.{k}", f"unknown key; a pruner takes {', '.join(sorted(PRUNER_KEYS))}")
        kw: dict[str, Any] = {"name": self.choice(f"{key}.name", raw.get("name"), PRUNERS)}
        for k in ("warmup_steps", "startup_trials"):
            if k in raw:
                kw[k] = self.integer(f"{key}.{k}", raw[k], low=0)
        for k in ("min_resource", "reduction_factor"):
            if k in raw:
                kw[k] = self.integer(f"{key}.{k}", raw[k], low=1 if k == "min_resource" else 2)
        if "max_resource" in raw:
            v = raw["max_resource"]
            kw["max_resource"] = v if v == "auto" else self.integer(f"{key}.max_resource", v, low=1)
        if "count" in raw:
            kw["count"] = self.choice(f"{key}.count", raw["count"], PRUNER_COUNTS)
        return Pruner(**kw)

    def repeats(self, data: dict, flags: tuple[Flag, ...], pruner: Pruner) -> dict[str, Any]:
        """``repeats:`` and ``seed_flag:``: each configuration runs ``repeats`` times, its seed
        passed as ``--SEED_FLAG=N``. The seed flag is the repeats' own, so it is declared under
        neither ``flags:`` (the search would draw it) nor left out when repeating."""
        out: dict[str, Any] = {}
        if data.get("seed_flag") is not None:
            name = data["seed_flag"]
            if not isinstance(name, str) or not FLAG_NAME_RE.match(name):
                raise self.error("seed_flag", FLAG_NAME_RULE)
            if any(f.name == name for f in flags):
                raise self.error("seed_flag", f"{name!r} is also declared under flags:; remove it there "
                                 "(each repeat is given its own seed)")
            out["seed_flag"] = name
        if data.get("repeats") is not None:
            out["repeats"] = self.integer("repeats", data["repeats"], low=1, high=MAX_REPEATS)
        if out.get("repeats", 1) > 1:
            if "seed_flag" not in out:
                raise self.error("repeats", "needs seed_flag: the script's seed option (e.g. seed_flag: "
                                 "seed), so each repeat runs with its own seed")
            if pruner.name != "none":
                raise self.error("pruner", f"cannot be used with repeats: {out['repeats']}: a configuration's "
                                 "score is the mean of its repeats, known only once they all end")
        return out

    def smoke(self, raw: Any, spec: SweepSpec) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.error("smoke", f"must be a mapping of overrides, got {_kind(raw)}")
        out: dict[str, Any] = {}
        for k, v in raw.items():
            key = f"smoke.{k}"
            if k not in SMOKE_KEYS:
                raise self.error(key, f"unknown key; smoke takes {', '.join(sorted(SMOKE_KEYS))}")
            if k == "flags":
                if not isinstance(v, dict):
                    raise self.error(key, f"must be a mapping of flag overrides, got {_kind(v)}")
                known = {f.name for f in spec.flags}
                for name in v:
                    if name not in known:
                        raise self.error(f"{key}.{name}", "not a flag declared under flags:")
                out["flags"] = {name: self.flag(name, val) for name, val in v.items()}
                out["flags"] = {n: dataclasses.replace(f, switch=spec.flag(n).switch or f.switch,
                                                       when=f.when or spec.flag(n).when)
                                for n, f in out["flags"].items()}
                for n, f in out["flags"].items():
                    self.check_switch(f"{key}.{n}", f)
            elif k in ("trials", "max_failures"):
                out[k] = self.integer(key, v, low=1)
            elif k == "seed":
                out[k] = self.integer(key, v, low=0, high=MAX_SEED)
            elif k == "timeout":
                out[k] = self.positive(key, v)
            elif k == "jobs":
                out[k] = self.jobs(key, v)
            elif k == "sampler":
                out[k] = self.choice(key, v, SAMPLERS)
            elif k == "pruner":
                out[k] = self.pruner(key, v)
        return out

    # ------------------------------------------------------------ when: and enqueue:

    def condition(self, key: str, raw: Any) -> Condition:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error(key, f"must be a condition as text, e.g. 'optimizer == sgd'; got {_kind(raw)}")

        def read(text: str) -> Any:
            try:
                return yaml.load(text, Loader=_Loader)
            except (yaml.YAMLError, RecursionError):
                raise self.error(key, f"cannot read the value {text!r}") from None

        try:
            return conditions.parse(raw, read)
        except conditions.ConditionError as exc:
            raise self.error(key, str(exc)) from None

    def conditions(self, flags: tuple[Flag, ...]) -> None:
        """Each ``when:`` names a flag of the file, with values that flag can take, and can
        hold; no chain of conditions comes back to where it started."""
        by_name = {f.name: f for f in flags}
        for flag in flags:
            if flag.when is not None:
                self.check_condition(f"flags.{flag.name}.when", flag.when, by_name)
        loop = conditions.cycle(flags)
        if loop:
            raise self.error(f"flags.{loop[0]}.when", f"the conditions form a cycle: {' -> '.join(loop)}")

    def check_condition(self, key: str, cond: Condition, by_name: dict[str, Flag]) -> None:
        parent = by_name.get(cond.flag)
        if parent is None:
            raise self.error(key, f"names {cond.flag!r}, which is not a flag of this file; "
                             f"flags: {', '.join(by_name)}")
        if parent.kind == "range":
            if cond.op in ("in", "not in"):
                raise self.error(key, f"{cond.flag} is a range: compare it with <, <=, >, >=, == or !=, "
                                 f"not '{cond.op}'")
            value = cond.values[0]
            if not conditions.is_number(value):
                raise self.error(key, f"{cond.flag} is a range of numbers; {value!r} is not a number")
            if cond.op in ("==", "!=") and not (parent.low <= value <= parent.high):
                raise self.error(key, f"{cond.flag} can never be {value!r}: its range is "
                                 f"{parent.low:g}..{parent.high:g}")
            if not (cond.op == "!=" or cond.holds(parent.low) or cond.holds(parent.high)):
                raise self.error(key, f"'{cond.text}' never holds: {cond.flag} is "
                                 f"{parent.low:g}..{parent.high:g}")
            return
        if cond.op in conditions.COMPARE and not all(conditions.is_number(v) for v in parent.values):
            raise self.error(key, f"'{cond.op}' compares numbers; {cond.flag} takes {list(parent.values)!r}")
        if cond.op not in conditions.COMPARE:
            for value in cond.values:
                if not conditions.member(value, parent.values):
                    raise self.error(key, f"{cond.flag} can never be {value!r}; its values: "
                                     f"{', '.join(map(str, parent.values))}")
        if not any(cond.holds(v) for v in parent.values):
            raise self.error(key, f"'{cond.text}' never holds: {cond.flag} takes "
                             f"{', '.join(map(str, parent.values))}")

    def enqueue(self, raw: Any, flags: tuple[Flag, ...]) -> tuple[dict[str, Any], ...]:
        example = "a list of configurations to try first, e.g. '- {lr: 0.001, optimizer: adam}'"
        if not isinstance(raw, list) or not raw:
            raise self.error("enqueue", f"must be {example}; got {_kind(raw)}")
        by_name = {f.name: f for f in flags}
        fixed = {f.name: f.values[0] for f in flags if f.kind == "fixed"}
        out = []
        for i, entry in enumerate(raw):
            key = f"enqueue[{i}]"
            if entry == {}:
                raise self.error(key, "an empty entry; give a flag's value, e.g. '- {lr: 0.001}', or remove it")
            if not isinstance(entry, dict):
                raise self.error(key, f"must be a mapping of flag -> value, got {_kind(entry)}")
            point: dict[str, Any] = {}
            for name, value in entry.items():
                if name not in by_name:
                    raise self.error(f"{key}.{name}", f"not a flag declared under flags:; flags: "
                                     f"{', '.join(by_name)}")
                point[name] = self.fitting(f"{key}.{name}", by_name[name], self.scalar(f"{key}.{name}", value))
            for name in point:
                broken = conditions.left_out(flags, {**fixed, **point}, name)
                if broken is not None:
                    raise self.error(f"{key}.{name}", f"{name} is left out here: its condition "
                                     f"'{broken.text}' does not hold")
            out.append(point)
        return tuple(out)

    def fitting(self, key: str, flag: Flag, value: Scalar) -> Scalar:
        """``value`` when ``flag`` can take it (a range's number as the range's type)."""
        if flag.kind == "fixed":
            if not conditions.member(value, flag.values):
                raise self.error(key, f"{flag.name} is fixed to {flag.values[0]!r}; got {value!r}")
            return flag.values[0]
        if flag.kind == "choice":
            if not conditions.member(value, flag.values):
                raise self.error(key, f"{value!r} is not one of {flag.name}'s values: "
                                 f"{', '.join(map(str, flag.values))}")
            return value
        number = self.number(key, value)
        if not flag.low <= number <= flag.high:
            raise self.error(key, f"{number:g} is outside {flag.name}'s range {flag.low:g}..{flag.high:g}")
        if flag.is_int and number != int(number):
            raise self.error(key, f"{flag.name} is an int range; got {number:g}")
        if flag.step:
            steps = (number - flag.low) / flag.step
            if abs(steps - round(steps)) > 1e-9:
                raise self.error(key, f"{number:g} is not on the steps of {flag.step:g} from {flag.low:g}")
        return int(number) if flag.is_int else float(number)
