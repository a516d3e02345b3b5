"""Gradient similarity: speed of the batched gradient pass, all-pairs similarity at scale, and agreement.

    curator demo                                   # a workspace with labels and stored rollouts
    python benchmarks/gradsim.py --workspace curator.duckdb [--examples 60] [--pairs-n 20000]

1. per-example gradient throughput on the same examples and rollouts (the correct rollouts of the
   initial-model eval, at most 20 per example): batched hooks (`rollout_gradients`) against the
   public code's procedure, one backward pass per rollout (`reference_gradients`); ratio printed.
2. all-pairs cosine similarity of N random vectors of dimension 8192 in blocks (`block_similarity`):
   wall time and peak resident memory of this process.
3. agreement: Spearman correlation between each example's mean similarity from projected (8192)
   LoRA-B gradients and from exact full-parameter gradients of the same surrogate.
One torch thread.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default="curator.duckdb")
    ap.add_argument("--examples", type=int, default=60)
    ap.add_argument("--pairs-n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=8192)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curator.analysis.gradsim import _label_set, _rollouts
    from curator.analysis.similarity import block_similarity, rademacher_project
    from curator.store import Workspace
    from curator.trainers.gradients import (
        GradConfig, attach_random_lora, full_parameter_gradients, reference_gradients, rollout_gradients,
    )

    with Workspace(args.workspace, read_only=True) as ws:
        _, _, initial = _label_set(ws, None)
        model_path = ws.sql("SELECT model FROM runs WHERE run_id = ?", [initial]).fetchone()[0]
        roll = _rollouts(ws, initial, 20)
    ids = list(roll.example_id.unique())[: args.examples]
    roll = roll[roll.example_id.isin(ids)]
    prompts, comps = roll.prompt.tolist(), roll.completion.tolist()
    owner = roll.example_id.to_numpy()
    tok = AutoTokenizer.from_pretrained(model_path)
    net = attach_random_lora(AutoModelForCausalLM.from_pretrained(model_path), GradConfig())
    adv = torch.ones(len(roll))

    rollout_gradients(net, tok, prompts[:8], comps[:8], adv[:8])  # warm-up
    t = time.perf_counter()
    fast = rollout_gradients(net, tok, prompts, comps, adv).numpy()
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = reference_gradients(net, tok, prompts, comps, adv).numpy()
    t_slow = time.perf_counter() - t
    print(f"[1] {len(ids)} examples, {len(roll)} correct rollouts, gradient dim {fast.shape[1]}")
    print(f"    batched:   {len(ids) / t_fast:7.1f} examples/s ({t_fast:.2f} s)")
    print(f"    reference: {len(ids) / t_slow:7.1f} examples/s ({t_slow:.2f} s)")
    print(f"    ratio batched / reference: {t_slow / t_fast:.2f}x; max |difference| {np.abs(fast - slow).max():.2e}")

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.pairs_n, args.dim)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    res = block_similarity(x, ["a" if i % 2 else "b" for i in range(args.pairs_n)])
    t_pairs = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"[2] all pairs of {args.pairs_n} vectors x {args.dim}: {t_pairs:.1f} s, peak RSS {peak / 2**20:.2f} GB "
          f"(before: {before / 2**20:.2f} GB; the vectors alone {x.nbytes / 2**30:.2f} GB); "
          f"mean similarity {res.mean_sim.mean():+.5f}")
    del x

    per_example = np.stack([fast[owner == e].mean(0) for e in ids])
    projected = block_similarity(rademacher_project(per_example, args.dim, 0)).mean_sim
    lora_exact = block_similarity(per_example).mean_sim
    plain = AutoModelForCausalLM.from_pretrained(model_path)
    groups = [ids.index(e) for e in owner]
    full = full_parameter_gradients(plain, tok, prompts, comps, adv, groups).numpy()
    full_sim = block_similarity(full).mean_sim
    print(f"[3] Spearman of mean similarity, {len(ids)} examples: projected LoRA vs exact full-parameter "
          f"{spearman(projected, full_sim):.3f}; exact LoRA vs full {spearman(lora_exact, full_sim):.3f}; "
          f"projected vs exact LoRA {spearman(projected, lora_exact):.3f}")


if __name__ == "__main__":
    main()
