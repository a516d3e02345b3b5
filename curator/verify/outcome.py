"""What verification returns: a status with a reason, never a bare number.

`Outcome` is the verdict on one completion; `GoldCheck` says whether a gold
answer string is readable at all. `preview` shortens any text that goes into a
detail, a log line or an error message, so a 5 MB completion never gets copied
into one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """How verifying one completion ended. Compares equal to its plain string."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NO_ANSWER = "no_answer"  # nothing math-verify could read as an answer
    TIMEOUT = "timeout"  # the worker ran past the per-item wall-clock limit and was killed
    ERROR = "error"  # gold unreadable, comparison raised, or the worker died


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)

EXTRACTED_CHARS = 180  # `Outcome.extracted` keeps this much text plus a short length note


def preview(text: str, n: int = 80) -> str:
    """`text` cut to `n` characters, with a note of how much was dropped.

    >>> preview("short")
    'short'
    >>> preview("x" * 1000, n=5)
    'xxxxx…[+995 chars]'
    """
    if len(text) <= n:
        return text
    return f"{text[:n]}…[+{len(text) - n} chars]"


@dataclass(frozen=True)
class Outcome:
    """The verdict on one completion. `reward` follows from `status`: 1.0 only when correct."""

    status: Status
    extracted: str | None = None  # the answer text math-verify pulled out, shortened
    detail: str | None = None  # why, for timeout / error / no_answer
    reward: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # ValueError on an unknown name
        object.__setattr__(self, "reward", 1.0 if self.status is Status.CORRECT else 0.0)


@dataclass(frozen=True)
class GoldCheck:
    """Whether a gold answer string parses as a gold answer; `parsed` is what it was read as."""

    ok: bool
    parsed: str | None = None
    detail: str | None = None
