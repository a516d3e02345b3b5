"""The lab's difficulty report: how hard is each bucket for the bootstrapped model?

Per bucket: greedy accuracy, mean pass rate over n samples at temperature 1.0,
and the share of problems with no, some, or all samples correct. Rewards come
from `curator.verify`, exactly as in training. Also the spread the lab is
tuned for, over the whole pool: problems solved in nearly every sample, "hard
but reachable" ones (solved, but in at most 10% of samples), never solved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from curator.lab.problems import Problem


@dataclass
class BucketStats:
    bucket: str
    problems: int
    greedy: float
    pass_rate: float
    share_zero: float
    share_some: float
    share_all: float


@dataclass
class DifficultyReport:
    n: int  # samples per problem
    buckets: list[BucketStats] = field(default_factory=list)
    share_nearly_all: float = 0.0  # >= 7/8 of samples correct
    share_reachable: float = 0.0  # 0 < rate <= 0.1
    share_never: float = 0.0
    correct: dict[str, int] = field(default_factory=dict)  # prompt -> samples correct


def summarize(problems: list[Problem], correct: list[int], greedy: list[bool], n: int) -> DifficultyReport:
    """Aggregate per-problem counts into the report (pure)."""
    by: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for p, k, g in zip(problems, correct, greedy):
        by[p.bucket].append((k, g))
    report = DifficultyReport(n=n)
    for bucket, rows in by.items():
        m = len(rows)
        report.buckets.append(BucketStats(
            bucket, m,
            greedy=sum(g for _, g in rows) / m,
            pass_rate=sum(k for k, _ in rows) / (n * m),
            share_zero=sum(k == 0 for k, _ in rows) / m,
            share_some=sum(0 < k < n for k, _ in rows) / m,
            share_all=sum(k == n for k, _ in rows) / m,
        ))
    total = len(problems)
    report.share_nearly_all = sum(k >= 0.875 * n for k in correct) / total
    report.share_reachable = sum(0 < k <= 0.1 * n for k in correct) / total
    report.share_never = sum(k == 0 for k in correct) / total
    report.correct = {p.prompt: k for p, k in zip(problems, correct)}
    return report


def inspect_model(model_path: str, problems: list[Problem], n: int = 32, temperature: float = 1.0,
                  seed: int = 0, threads: int = 1) -> DifficultyReport:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curator.trainers.sampling import sample
    from curator.verify import Verifier

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the stage shows its own progress
    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(model_path).eval()
    tok = AutoTokenizer.from_pretrained(model_path)
    prompts = [p.prompt for p in problems]
    sampled = sample(model, tok, prompts, n=n, temperature=temperature, seed=seed)
    greedy = sample(model, tok, prompts, n=1, temperature=0.0)
    with Verifier() as v:
        flat = v.verify_batch([c.text for cs in sampled for c in cs],
                              [p.answer for p in problems for _ in range(n)])
        g = v.verify_batch([cs[0].text for cs in greedy], [p.answer for p in problems])
    correct = [sum(o.reward for o in flat[i * n : (i + 1) * n]) for i in range(len(problems))]
    return summarize(problems, [int(c) for c in correct], [o.status == "correct" for o in g], n)
