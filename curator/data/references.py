"""Check that each example's reference solution verifies against its own gold answer.

A dataset whose worked solutions disagree with its answers (or that math-verify
cannot read) gives wrong rewards; this stage measures that before any training.
It reads `examples`, writes nothing, and returns counts by verification status
with a few examples of each failure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ReferenceConfig:
    dataset: str | None = None  # default: every dataset in the workspace
    timeout: float = 5.0  # seconds per solution
    show: int = 5  # failing examples to keep per status


@dataclass
class ReferenceSummary:
    n_examples: int
    n_without_solution: int
    statuses: Counter = field(default_factory=Counter)
    failures: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # status -> (id, answer, extracted)


def check_references(ws, config: ReferenceConfig, advance=lambda n=1: None) -> ReferenceSummary:
    from curator.verify import Verifier

    where, params = ("WHERE dataset = ?", [config.dataset]) if config.dataset else ("", [])
    rows = ws.df(f"SELECT example_id, answer, solution FROM examples {where} ORDER BY dataset, row_index", params)
    with_solution = rows[rows.solution.notna()]
    summary = ReferenceSummary(len(rows), len(rows) - len(with_solution))
    chunk = 64
    with Verifier(timeout=config.timeout) as verifier:
        for start in range(0, len(with_solution), chunk):
            part = with_solution.iloc[start : start + chunk]
            outcomes = verifier.verify_batch(part.solution.tolist(), part.answer.tolist())
            for (eid, ans), o in zip(zip(part.example_id, part.answer), outcomes):
                summary.statuses[o.status] += 1
                if o.status != "correct":
                    kept = summary.failures.setdefault(o.status, [])
                    if len(kept) < config.show:
                        kept.append((eid, ans, o.extracted or o.detail or ""))
            advance(len(part))
    return summary
