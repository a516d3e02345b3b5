"""Cosine similarity of gradient vectors, in blocks, and what the paper reads off it.

Pure numpy. `block_similarity` never holds the N x N matrix: it walks row
blocks of the normalized vectors, and from each block of similarities keeps
only per-example sums over all others and over each group, plus the
group-by-group sums. Memory is O(N * D + block * N).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SimilarityResult:
    mean_sim: np.ndarray  # (N,) mean cosine similarity to every other example
    by_group: np.ndarray  # (N, G) mean similarity to each group's other members (nan when empty)
    group_matrix: np.ndarray  # (G, G) mean over pairs a in A, b in B, a != b
    group_pairs: np.ndarray  # (G, G) number of such pairs
    groups: list[str]


def normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def block_similarity(vectors: np.ndarray, groups: list[str] | None = None, block: int = 2048) -> SimilarityResult:
    n = vectors.shape[0]
    labels = list(groups) if groups is not None else ["all"] * n
    names = sorted(set(labels))
    gidx = np.array([names.index(g) for g in labels], dtype=np.int64)
    onehot = np.zeros((n, len(names)), dtype=np.float64)
    onehot[np.arange(n), gidx] = 1.0
    x = normalize(vectors.astype(np.float32, copy=False))
    total = np.zeros(n)
    group_sum = np.zeros((n, len(names)))
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = (x[start:stop] @ x.T).astype(np.float64)  # (b, N)
        sims[np.arange(stop - start), np.arange(start, stop)] = 0.0  # leave self out
        total[start:stop] = sims.sum(1)
        group_sum[start:stop] = sims @ onehot
    counts = onehot.sum(0)  # members per group
    others = counts[None, :] - onehot  # members of each group other than the example itself
    with np.errstate(invalid="ignore", divide="ignore"):
        by_group = np.where(others > 0, group_sum / others, np.nan)
        mean_sim = total / max(1, n - 1)
        pair_sum = onehot.T @ group_sum  # (G, G)
        pairs = np.outer(counts, counts) - np.diag(counts)
        matrix = np.where(pairs > 0, pair_sum / np.where(pairs > 0, pairs, 1), np.nan)
    return SimilarityResult(mean_sim, by_group, matrix, pairs.astype(np.int64), names)


def rademacher_project(vectors: np.ndarray, dim: int, seed: int, chunk: int = 4096) -> np.ndarray:
    """Project (N, D) onto `dim` dimensions with a seeded +-1/sqrt(dim) matrix, generated in row chunks."""
    n, d = vectors.shape
    out = np.zeros((n, dim), dtype=np.float32)
    for i, start in enumerate(range(0, d, chunk)):
        stop = min(d, start + chunk)
        rng = np.random.default_rng([seed, i])
        signs = rng.integers(0, 2, size=(stop - start, dim), dtype=np.int8) * 2 - 1
        out += vectors[:, start:stop].astype(np.float32) @ signs.astype(np.float32)
    return out / np.sqrt(dim)


def auroc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float | None:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney)."""
    pos, neg = np.asarray(scores_pos, float), np.asarray(scores_neg, float)
    if len(pos) == 0 or len(neg) == 0:
        return None
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
