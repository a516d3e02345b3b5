"""The lab's step checker: scores the reasoning of a trace from 0 to 5.

It is the programmatic stand-in for an LLM judge. Given the problem and a
completion in the lab's trace format (`23*4=92;92+17=109;\\boxed{109}`), it
checks every step and deducts for each defect:

- a step whose arithmetic is wrong                     -2 each
- a step that does not parse as `x op y=z`             -2 each
- an operand that is neither a number of the problem
  nor the result of an earlier step (ungrounded)        -1 each
- steps that are not the operations this problem needs  -1
- a boxed answer that is not the last step's result     -2
- no boxed answer at all                                -2
- no steps at all                                       -2

clipped to [0, 5]; a completion with no parseable step and no box scores 0. A
right final answer reached through wrong steps therefore scores low, which is
what the judge is for.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from curator.lab.problems import BOX_OPEN, _parse, _tokens, trace

_STEP = re.compile(r"^(-?\d+)([+\-*])(-?\d+)=(-?\d+)$")
_BOX = re.compile(re.escape(BOX_OPEN) + r"(-?\d+)\}")


@dataclass(frozen=True)
class StepCheck:
    score: int  # 0..5
    n_steps: int
    n_wrong: int  # arithmetic errors and unparseable steps
    n_ungrounded: int
    matches_problem: bool
    chained: bool  # boxed answer equals the last step's result
    final: int | None
    reasons: tuple[str, ...] = field(default=())

    @property
    def rationale(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "every step is right and leads to the answer"


def _eval(x: int, op: str, y: int) -> int:
    return x + y if op == "+" else x - y if op == "-" else x * y


def problem_numbers(prompt: str) -> set[int]:
    return {int(t) for t in _tokens(prompt.rstrip("=")) if t.isdigit()}


def check_steps(prompt: str, completion: str) -> StepCheck:
    """Score the reasoning of `completion` for the lab problem `prompt` (e.g. `(3+4)*5=`)."""
    expr = prompt.strip().rstrip("=")
    _parse(_tokens(expr))  # raises ValueError for a prompt that is not a lab problem
    ref_steps, _, _ = trace(expr)
    reasons: list[str] = []

    box = _BOX.search(completion)
    body = completion[: box.start()] if box else completion
    parts = [p.strip() for p in body.split(";") if p.strip()]
    final = int(box.group(1)) if box else None

    known = problem_numbers(expr)
    n_wrong = n_ungrounded = 0
    results: list[int] = []
    parsed: list[str] = []
    for i, part in enumerate(parts, 1):
        m = _STEP.match(part)
        if not m:
            n_wrong += 1
            reasons.append(f"step {i} {part[:30]!r} is not of the form x op y=z")
            continue
        x, op, y, z = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        parsed.append(f"{x}{op}{y}={_eval(x, op, y)}")
        if _eval(x, op, y) != z:
            n_wrong += 1
            reasons.append(f"step {i}: {x}{op}{y} is {_eval(x, op, y)}, not {z}")
        for v in (x, y):
            if v not in known and v not in results:
                n_ungrounded += 1
                reasons.append(f"step {i}: {v} is neither in the problem nor an earlier result")
        results.append(z)

    if not parts and final is None:
        return StepCheck(0, 0, 0, 0, False, None, ("no steps and no boxed answer",))

    matches = Counter(parsed) == Counter(ref_steps) and len(parsed) == len(parts)
    if not matches:
        reasons.append("the steps are not the operations this problem needs")
    chained = final is not None and bool(results) and results[-1] == final
    score = 5 - 2 * n_wrong - n_ungrounded - (0 if matches else 1)
    if not parts:
        score -= 2
        reasons.append("no steps shown")
    if final is None:
        score -= 2
        reasons.append("no boxed answer")
    elif not chained:
        score -= 2
        reasons.append(
            f"the boxed answer {final} is not the last step's result"
            + (f" {results[-1]}" if results else " (there are no steps)")
        )
    return StepCheck(max(0, min(5, score)), len(parts), n_wrong, n_ungrounded, matches, chained, final,
                     tuple(reasons))
