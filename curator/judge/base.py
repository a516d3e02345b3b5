"""What a judge is: items in, one judgment (a score 0-5 or a status) per item out.

Every judge shares this interface, so the judge stage, the cache and the
report treat the lab's step checker and an LLM behind an OpenAI-compatible
endpoint alike. A failed judgment is a status (`judge_error`, `refused`),
never a score of 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

STATUSES = ("ok", "judge_error", "refused")


@dataclass(frozen=True)
class JudgeItem:
    problem: str
    answer: str  # the gold answer
    completion: str  # the rollout whose reasoning is judged (it reached the right answer)


@dataclass(frozen=True)
class Judgment:
    status: str  # ok | judge_error | refused
    score: float | None = None  # 0..5 when ok
    rationale: str | None = None
    prompt_tokens: int | None = None  # when the endpoint reports usage
    completion_tokens: int | None = None
    requests: int = 0  # HTTP requests this judgment took (retries included)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown judgment status {self.status!r}")
        if self.status == "ok" and (self.score is None or not 0 <= self.score <= 5):
            raise ValueError("an ok judgment needs a score in [0, 5]")
        if self.status != "ok" and self.score is not None:
            raise ValueError("only an ok judgment carries a score")


class Judge(Protocol):
    name: str  # step_checker | openai
    model: str | None
    rubric_version: str

    def judge(self, items: list[JudgeItem]) -> list[Judgment]: ...


class StepCheckerJudge:
    """The arithmetic lab's step checker behind the judge interface (offline, exact, free)."""

    name = "step_checker"
    model = None
    rubric_version = "stepcheck-v1"

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        from curator.lab.stepcheck import check_steps

        out = []
        for it in items:
            try:
                r = check_steps(it.problem, it.completion)
            except (ValueError, IndexError):
                out.append(Judgment("judge_error", rationale="not a lab problem: the step checker cannot read it"))
                continue
            out.append(Judgment("ok", float(r.score), r.rationale))
        return out
