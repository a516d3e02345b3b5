"""pass@1 evaluation: n samples per example, scored, counted per example.

    evaluate(backend, examples, reward_fn, n=32, temperature=0.7, seed=0) -> list[dict]

One row per example (n, n_correct, n_timeout, n_error), the shape of the
workspace's `evals` table minus run and step; pass@k for any k <= n follows
from (n, n_correct) with the unbiased estimator (`pass_at_k`).
"""

from __future__ import annotations

from math import comb
from typing import Callable


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, have {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def evaluate(backend, examples, reward_fn, n: int = 32, temperature: float = 0.7, seed: int = 0,
             max_new_tokens: int = 48, chunk: int = 64, on_chunk: Callable[[int], None] = lambda k: None,
             keep: str = "none") -> tuple[list[dict], list[dict]]:
    """Sample and score; return (eval rows, kept completion rows)."""
    rows, kept = [], []
    for start in range(0, len(examples), chunk):
        part = examples[start : start + chunk]
        samples = backend.generate([e.prompt for e in part], n=n, max_new_tokens=max_new_tokens,
                                   temperature=temperature, seed=seed * 7919 + start)
        outcomes = list(reward_fn([c.text for cs in samples for c in cs], [e.answer for e in part for _ in range(n)]))
        for i, (e, comps) in enumerate(zip(part, samples)):
            outs = outcomes[i * n : (i + 1) * n]
            statuses = [o.status for o in outs]
            rows.append({
                "example_id": e.example_id, "n": n, "n_correct": statuses.count("correct"),
                "n_timeout": statuses.count("timeout"), "n_error": statuses.count("error"),
                "temperature": temperature,
            })
            if keep != "none":
                picked = [(j, c, o) for j, (c, o) in enumerate(zip(comps, outs))
                          if keep == "all" or o.status == "correct"]
                if keep.isdigit():
                    picked = picked[: int(keep)]
                kept.extend({"example_id": e.example_id, "sample_index": j, "completion": c.text,
                             "status": o.status, "reward": float(o.reward), "length": c.length}
                            for j, c, o in picked)
        on_chunk(len(part))
    return rows, kept
