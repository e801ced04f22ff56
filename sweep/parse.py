"""Metrics from what a script prints, read exactly, and nothing else.

``parse_line(line, rules)`` is pure: one line of output (ANSI colours stripped first) and the
sweep's ``Rules`` in, ``(metrics, step)`` out. The rules, as README states them:

1. **The flags file's regexes.** Each ``metrics:`` regex that matches gives its first group
   as the value, whatever follows the number. When the flags file lists ``metrics:``, those
   regexes (and ``sweep.log``) are *all* that is read: nothing else on any line is a metric.
2. **A pair is a name and a number**: ``eval_accuracy: 0.93``, ``loss=0.21``,
   ``'eval_loss': 0.3`` (dict prints), ``train loss: 2.31`` and ``valid ppl  355.21`` (up to
   three words before the number, joined by ``_`` as printed: ``train_loss``, ``valid_ppl``;
   ``Top-1 Acc``, ``train/loss``, ``Acc@1`` give ``Top_1_Acc``, ``train_loss``, ``Acc_1``).
   A name without ``:`` or ``=`` counts only when the number ends a field (``|``, ``,``,
   ``;``, ``)``, a tab, two spaces, the end of the line) or another pair follows it.
3. **A number followed by ``/``, ``%``, a unit (``12ms``, ``2.1 s``, ``401 MB``,
   ``9.5it/s``) or more digits (``1,234``, ``0,93``, ``12:30``, ``1 2``) is not a value**:
   ``146/500 = 29.20% correct`` gives nothing, and a decimal comma (``0,93``) is never read
   (``0,93`` and ``1,234`` cannot be told apart). ``tensor(0.5)`` and ``np.float64(0.5)``
   are read as ``0.5``.
4. **Echoed configuration is not a metric.** A pair counts only when its name is one of the
   sweep's objectives (matched ignoring case and ``_``/``-``; recorded under the flags
   file's spelling), or it looks like a metric (a word such as loss, acc, error, f1, ppl,
   score, reward, iou, psnr: ``METRIC_WORDS``; but not with a word such as weight, scale,
   threshold, target: ``CONFIG_WORDS``), or the line carries a step marker (below). Never
   when the name is one of the trial's flags (``lr`` for a flag ``lr``, ``learning_rate``
   for ``learning-rate`` or ``trainer.learning_rate``), never inside an object's printout
   (``Namespace(lr=0.1, ...)``, ``GPTConfig(...)``), and never Lightning's ``v_num``.
   So ``seed: 3407``, ``vocab_size: 27``, ``dataset=32033`` and argparse dumps are skipped.
5. **The step** is the first whole number after ``step``, ``epoch``, ``iter`` or
   ``iteration`` on the line (``epoch 3:``, ``Epoch 4/10``, ``Train Epoch: 1 [...]``,
   ``'epoch': 1.0``, ``Step [100/600]``); a step marker is never a metric itself.
6. On one line, the last value of a name wins.

``LineReader`` splits the byte stream into lines with bounded memory: a carriage return
redraws the line (tqdm), so only the last non-blank drawing is kept, and the final drawing is
read even when the stream ends without a newline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sweep.rundir import strip_ansi

MAX_LINE = 64 * 1024

NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|inf|Inf|infinity|Infinity)"
# One word of a name: ``loss``, ``Top-1``, ``ms/batch``, ``Acc@1``, ``train/loss``.
WORD = r"[A-Za-z_][A-Za-z0-9_]*(?:[-/.@][A-Za-z0-9_]+)*"
# Units a number may carry after a space (glued ones are any letters: 12ms, 2.1s, 9.5it/s).
UNITS = (r"(?:[munµ]?s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?|[kmgtp]i?b|bytes?"
         r"|[kmgtb]|fps|hz|\w+/s|s/\w+)")
# What may not follow a value: letters or digits glued on (a unit), ``,9`` ``.9`` ``:9``
# (more digits), ``.x`` (not a number), ``/`` or ``%`` (a ratio), another number, a unit.
NOT_AFTER = rf"(?![\w%µ]|[.,:]\d|\.[A-Za-z_]|\s*[/%]|\s+[-+]?\.?\d|\s+{UNITS}(?![\w/]))"
WRAPPED = r"(?:(?:tensor|(?:np|numpy)\.(?:float|int)\d*)\()?"
PAIR_RE = re.compile(
    rf"(?<![\w.@/-])(?P<q>['\"]?)(?P<name>{WORD}(?: {WORD}){{0,2}})(?P=q)"
    rf"(?:(?P<assign>\s*[:=]\s*)|[ ]+){WRAPPED}(?P<value>{NUMBER}){NOT_AFTER}",
    re.IGNORECASE,
)
# A name without ``:``/``=`` and its value must be a whole field: the name starts after a
# field separator (or another pair), and the value ends before one (or another pair).
FIELD_START_RE = re.compile(r"(?:^|[|,;:\[{\t]|\s\s|\s-)\s*\Z")
FIELD_END_RE = re.compile(r"\s*(?:$|[|,;)\]}]|:\s|\()|\t|\s{2,}|\s+-\s")
STEP_KEYS = ("step", "epoch", "iter", "iteration", "global_step")
STEP_RE = re.compile(
    r"(?<![\w.])['\"]?(?:global_step|step|epoch|iteration|iter)\b['\"]?\s*[:=]?\s*[\[(]?\s*"
    r"(\d+(?:\.\d*)?)(?![\d.]|,\d)",
    re.IGNORECASE,
)
CALL_RE = re.compile(r"[\w.]\(|[()]")
MAYBE_NUMBER_RE = re.compile(r"\d|nan|inf", re.IGNORECASE)
METRIC_WORDS = frozenset("""
    loss losses acc accuracy error errors err f1 auc auroc auprc ap map ppl perplexity bleu
    rouge meteor chrf mse mae rmse mape nll wer cer bpc bpd score reward return precision
    recall iou miou dice top1 top5 psnr ssim lpips fid kl kld elbo ndcg mrr r2 em exact
    likelihood entropy mcc kappa spearman pearson corr latency
""".split())
CONFIG_WORDS = frozenset("""
    weight weights coef coeff coefficient scale scaling factor threshold thresh target
    patience clip lambda beta alpha gamma temperature margin eps epsilon smoothing type fn
    mode
""".split())
PROSE_WORDS = frozenset("""
    is are was were be been being has have had of the a an to in on at for by with from and or
    not no than then got became becomes reached
""".split())
IGNORED = frozenset({"v_num"})  # Lightning's progress bar shows its logger version
BOX_RE = re.compile("[\u2502\u2503\u2551]")  # rich tables' vertical rules: space, not a field


def name_key(name: str) -> str:
    """A name for comparing: lower case, ``-``, ``.``, ``/``, ``@`` and spaces as ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def name_words(name: str) -> list[str]:
    """The words of a metric name, lower case, split on ``_``, ``-``, ``.``, ``/``, ``@``,
    spaces and camelCase: ``valid_ppl`` -> valid, ppl; ``valAcc`` -> val, acc."""
    return [w for w in name_key(re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)).split("_") if w]


def looks_like_metric(name: str) -> bool:
    words = name_words(name)
    if any(w in CONFIG_WORDS for w in words):
        return False
    return any(w in METRIC_WORDS or w.rstrip("0123456789") in METRIC_WORDS for w in words)


class Rules:
    """How one sweep reads its trials' output; built once per sweep, never changed.

    ``objectives``: the metric name(s) the sweep optimizes (always read, under this spelling).
    ``regexes``: ``(name, regex)`` pairs from the flags file's ``metrics:`` (text or compiled).
    ``flags``: the trial's flag names (a name equal to one is configuration, not a metric).
    ``only_regexes``: read nothing but the regexes; by default, whenever there are regexes.
    """

    __slots__ = ("_flag_keys", "_objective_keys", "objectives", "only_regexes", "regexes")

    def __init__(self, objectives: str | Iterable[str] = (), regexes: Iterable[tuple[str, Any]] = (),
                 flags: Iterable[str] = (), only_regexes: bool | None = None) -> None:
        self.objectives = (objectives,) if isinstance(objectives, str) else tuple(objectives)
        self.regexes = tuple((name, p if isinstance(p, re.Pattern) else re.compile(p)) for name, p in regexes)
        self.only_regexes = bool(self.regexes) if only_regexes is None else only_regexes
        self._objective_keys = {name_key(name): name for name in self.objectives}
        flag_keys: set[str] = set()
        for name in flags:
            flag_keys.update((name_key(name), name_key(name.rsplit(".", 1)[-1])))
        self._flag_keys = frozenset(flag_keys)

    @classmethod
    def from_spec(cls, spec: Any) -> Rules:
        """The rules of a ``SweepSpec``: its objectives and the metrics its constraints name
        (read whatever their names), ``metrics`` regexes and flag names."""
        named = [m for m, _ in spec.targets()] + [c.metric for c in spec.constraints]
        return cls(tuple(dict.fromkeys(named)), spec.metrics, [f.name for f in spec.flags])

    def __repr__(self) -> str:
        return (f"Rules(objectives={self.objectives!r}, regexes={[n for n, _ in self.regexes]!r}, "
                f"flags={sorted(self._flag_keys)!r}, only_regexes={self.only_regexes})")


DEFAULT_RULES = Rules()


def parse_line(line: str, rules: Rules | Iterable[tuple[str, re.Pattern[str]]] | None = None
               ) -> tuple[dict[str, float], int | None]:
    """Metrics on one line of output, and the step named on it (if any).

    ``rules`` is a ``Rules``; a plain list of ``(name, compiled regex)`` (the older call) means
    ``Rules(regexes=that list)``."""
    if rules is None:
        rules = DEFAULT_RULES
    elif not isinstance(rules, Rules):
        rules = Rules(regexes=rules)
    line = strip_ansi(line)
    found: dict[str, float] = {}
    step, marked = _step(line)
    if not rules.only_regexes and MAYBE_NUMBER_RE.search(line):
        for name, value in _pairs(BOX_RE.sub(" ", line)):
            k = name_key(name)
            objective = rules._objective_keys.get(k)
            if objective is not None:
                found[objective] = value
            elif k not in IGNORED and k not in rules._flag_keys and (marked or looks_like_metric(name)):
                found[name] = value
    for name, pattern in rules.regexes:
        match = pattern.search(line)
        if match:
            try:
                found[name] = float(match.group(1))
            except (TypeError, ValueError):
                pass
    return found, step


def _step(line: str) -> tuple[int | None, bool]:
    """The step named on a line (its first whole-number marker) and whether any marker is."""
    step = None
    marked = False
    for match in STEP_RE.finditer(line):
        marked = True
        number = float(match.group(1))
        if number == int(number):
            step = int(number)
            break
    return step, marked


def _pairs(line: str) -> list[tuple[str, float]]:
    """The name-value pairs of a line (rules 2, 3 and the structural part of 4)."""
    candidates = [m for m in PAIR_RE.finditer(line)]
    if not candidates:
        return []
    calls = _call_spans(line) if "(" in line else ()
    kept: list[tuple[str, float]] = []
    next_start = None  # where the next accepted pair starts: a value may end right before it
    for i in range(len(candidates) - 1, -1, -1):
        m = candidates[i]
        start, end = m.start(), m.end()
        if not m.group("assign"):
            rest = line[end:end + 64]
            gap = len(rest) - len(rest.lstrip())
            if not FIELD_END_RE.match(rest) and next_start != end + gap:
                continue
            before = line[max(0, start - 64):start]
            after_pair = i > 0 and not line[candidates[i - 1].end():start].strip()
            if not (after_pair or FIELD_START_RE.search(before) or (start > 64 and not before.strip())):
                continue
        if any(a <= start < b for a, b in calls):
            continue
        next_start = start
        words = m.group("name").split(" ")
        # Prose is not a name: "Loss is nan, stopping" names nothing, "accuracy of the model:"
        # names only what follows the last such word.
        while words and any(w.lower() in PROSE_WORDS for w in words):
            words = words[1:]
        if not words or words[-1].lower() in STEP_KEYS:
            continue
        name = "_".join(re.sub(r"[-/.@]", "_", w) for w in words)
        kept.append((name, float(m.group("value"))))
    kept.reverse()
    return kept


def _call_spans(line: str) -> list[tuple[int, int]]:
    """Spans inside an object's printout, ``Name(...)``: ``Namespace(lr=0.1)``. A span whose
    closing parenthesis is missing (a cut line) runs to the end of the line."""
    spans = []
    stack: list[tuple[int, bool]] = []
    for m in CALL_RE.finditer(line):
        text = m.group()
        if text == ")":
            if stack:
                opened, call = stack.pop()
                if call:
                    spans.append((opened, m.start()))
        else:
            stack.append((m.end(), len(text) == 2))
    spans.extend((opened, len(line)) for opened, call in stack if call)
    return spans


class LineReader:
    """Incrementally split a growing byte stream into lines, with bounded memory.

    A carriage return redraws the line (progress bars): a line is its last non-blank drawing,
    so a tqdm bar redrawn thousands of times yields only its final state, and ``flush`` gives
    that state even when the stream ended without a newline. A CRLF ending is just an ending.
    A drawing longer than ``MAX_LINE`` (binary junk) is dropped, with the line it is on.
    """

    def __init__(self) -> None:
        self._seg = b""  # what was drawn since the last \r or \n
        self._junk = False  # the current drawing outgrew MAX_LINE: dropped
        self._last: bytes | None = None  # the last complete non-blank drawing of this line

    def feed(self, data: bytes) -> list[str]:
        lines = []
        parts = data.split(b"\n")
        for i, part in enumerate(parts):
            self._take(part)
            if i < len(parts) - 1:
                line = self._end_line()
                if line is not None:
                    lines.append(line)
        return lines

    def flush(self) -> list[str]:
        line = self._end_line()
        return [line] if line else []

    def _take(self, part: bytes) -> None:
        """Text without a newline: the current drawing grows, or ``\\r`` starts new ones."""
        if b"\r" not in part:
            self._grow(part)
            return
        drawings = part.split(b"\r")
        self._grow(drawings[0])
        self._redraw()
        # Of the drawings complete within this chunk, only the last non-blank one matters.
        for middle in reversed(drawings[1:-1]):
            if middle.strip():
                self._grow(middle)
                self._redraw()
                break
        self._grow(drawings[-1])

    def _grow(self, data: bytes) -> None:
        if self._junk or not data:
            return
        if len(self._seg) + len(data) > MAX_LINE:
            self._seg, self._junk = b"", True
        else:
            self._seg += data

    def _redraw(self) -> None:
        if self._junk:
            self._last = None  # junk drew over it
        elif self._seg.strip():
            self._last = self._seg
        self._seg, self._junk = b"", False

    def _end_line(self) -> str | None:
        seg, last, junk = self._seg, self._last, self._junk
        self._seg, self._junk, self._last = b"", False, None
        if junk:
            return None
        return _decode(seg if seg.strip() or last is None else last)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")
