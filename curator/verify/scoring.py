"""Score one completion against one gold answer with math-verify, in the calling process.

These functions have no time limit of their own: math-verify's signal-based
timeouts are switched off (`parsing_timeout=None`, `timeout_seconds=None`)
because a SIGALRM handler never runs while sympy sits inside one long C call
(`9^{9^{9^9}}` holds the GIL for minutes). The pool in `pool.py` runs them in
worker processes and SIGKILLs a worker past its deadline instead.

Importing this module imports sympy and math-verify (about a second); the
parent process never does, only the workers (through the forkserver preload).
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from math_verify import parse, verify

from curator.verify.outcome import EXTRACTED_CHARS, GoldCheck, Outcome, Status, preview

GOLD_UNPARSED = "gold answer could not be parsed"


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once per process that its timeouts are off; here that is on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


def _extract(text: str) -> list:
    """math-verify's default extraction (LaTeX, then plain expressions); exceptions propagate."""
    return parse(text, parsing_timeout=None, raise_on_error=True)


def _has_math(found: list) -> bool:
    """math-verify returns parsed sympy objects plus the raw matched string; only the first count."""
    return any(not isinstance(x, str) for x in found)


def read_gold(gold: str) -> tuple[list, str | None]:
    """Parse a gold answer: (math-verify objects, None), or ([], why not).

    A bare gold is wrapped in `\\boxed{...}` first: unwrapped, `2^{10}` goes to
    the plain-expression extractor, which reads it as `2`. Only if the boxed
    form yields nothing at all is the bare string parsed as is. A gold that
    already contains `\\boxed` is parsed unchanged.
    """
    text = gold.strip()
    if not text:
        return [], "empty gold answer"
    try:
        found = _extract(text) if "\\boxed" in text else (_extract(f"\\boxed{{{text}}}") or _extract(text))
    except Exception as e:  # a math-verify bug on this input: report it, it is not a verdict
        return [], f"{GOLD_UNPARSED} ({type(e).__name__}: {preview(str(e), 60)})"
    if not _has_math(found):
        return [], GOLD_UNPARSED
    return found, None


def check_gold(gold: str) -> GoldCheck:
    """Whether `gold` parses as a gold answer, and what it was read as (sympy's spelling)."""
    found, why = read_gold(gold)
    if not found:
        return GoldCheck(ok=False, parsed=None, detail=why)
    expr = next(x for x in found if not isinstance(x, str))
    return GoldCheck(ok=True, parsed=preview(str(expr), EXTRACTED_CHARS), detail=None)


def _compare(gold: list, pred: list) -> tuple[bool, Exception | None]:
    """Any (gold, pred) pair equal? Also the first exception a pair raised, so an error is not read as a miss."""
    first_error = None
    for g in gold:
        for p in pred:
            try:
                if verify(g, p, timeout_seconds=None, raise_on_error=True):
                    return True, None
            except Exception as e:  # sympy raising on one pair; another pair may still match
                first_error = first_error or e
    return False, first_error


def _answer_text(found: list) -> str:
    """The raw answer text math-verify matched (it appends it after the parsed objects)."""
    raw = next((x for x in found if isinstance(x, str)), None)
    return preview(raw if raw is not None else str(found[0]), EXTRACTED_CHARS)


def score(completion: str, gold: list) -> Outcome:
    """Verdict on `completion` against an already-parsed gold (from `read_gold`)."""
    try:
        found = _extract(completion)
    except Exception as e:
        return Outcome(Status.ERROR, detail=f"{type(e).__name__} while parsing the completion: {preview(str(e), 60)}")
    if not found:
        return Outcome(Status.NO_ANSWER, detail="no answer found in the completion")
    extracted = _answer_text(found)
    matched, error = _compare(gold, found)
    if matched:
        return Outcome(Status.CORRECT, extracted=extracted)
    if error is not None:
        return Outcome(Status.ERROR, extracted=extracted,
                       detail=f"{type(error).__name__} while comparing: {preview(str(error), 60)}")
    if not _has_math(found):
        return Outcome(Status.NO_ANSWER, extracted=extracted,
                       detail=f"answer text could not be read as math: {preview(extracted, 60)}")
    return Outcome(Status.INCORRECT, extracted=extracted)


class GoldCache:
    """LRU of parsed golds: the G rollouts of one prompt share a gold, so parse it once per worker."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, tuple[list, str | None]] = OrderedDict()

    def get(self, gold: str) -> tuple[list, str | None]:
        """`read_gold(gold)`, from the cache when seen recently."""
        hit = self._items.get(gold)
        if hit is not None:
            self._items.move_to_end(gold)
            return hit
        value = self._items[gold] = read_gold(gold)
        if len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return value


def score_against(completion: str, gold: str, cache: GoldCache) -> Outcome:
    """Verdict on `completion` against a gold answer string; an unreadable gold is an error."""
    parsed, _ = cache.get(gold)
    if not parsed:  # `check_gold` gives the finer reason
        return Outcome(Status.ERROR, detail=GOLD_UNPARSED)
    return score(completion, parsed)


def warm_up() -> None:
    """One parse and verify, so the first real item in a fresh process does not pay ~0.1 s of setup."""
    score_against("so $x = 0.5$", "\\frac{1}{2}", GoldCache(maxsize=1))
