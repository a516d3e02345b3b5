"""Gradient similarity: batched gradients equal the per-rollout reference; block math equals the direct one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from curator.analysis.similarity import auroc, block_similarity, rademacher_project
from curator.pipeline import LAB_DATA, LAB_MODEL


def _lab_rows(n):
    return [json.loads(line) for line in (LAB_DATA / "train.jsonl").read_text().splitlines()[:n]]


def test_batched_gradients_equal_one_backward_per_rollout():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curator.trainers.gradients import GradConfig, attach_random_lora, reference_gradients, rollout_gradients

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(LAB_MODEL)
    net = attach_random_lora(AutoModelForCausalLM.from_pretrained(LAB_MODEL), GradConfig())
    rows = _lab_rows(12)
    prompts, comps = [r["prompt"] for r in rows], [r["solution"] for r in rows]
    adv = torch.linspace(0.5, 1.5, len(rows))
    fast = rollout_gradients(net, tok, prompts, comps, adv, batch_rows=5)
    slow = reference_gradients(net, tok, prompts, comps, adv)
    assert fast.shape == slow.shape and fast.shape[1] > 10_000
    assert torch.allclose(fast, slow, atol=1e-5, rtol=1e-4)
    assert fast.abs().sum(1).min() > 0  # B = 0 leaves the model as is, yet every rollout has a gradient


def test_block_similarity_equals_the_direct_matrix():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 20)).astype(np.float32)
    groups = [["a", "b", "c"][i % 3] for i in range(37)]
    res = block_similarity(x, groups, block=8)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, np.nan)
    assert np.allclose(res.mean_sim, np.nanmean(s, axis=1), atol=1e-5)
    g = np.array(groups)
    for j, name in enumerate(res.groups):
        assert np.allclose(res.by_group[:, j], np.nanmean(s[:, g == name], axis=1), atol=1e-5)
        for k, other in enumerate(res.groups):
            block = s[np.ix_(g == name, g == other)]
            assert res.group_matrix[j, k] == pytest.approx(np.nanmean(block), abs=1e-5)
            assert res.group_pairs[j, k] == np.count_nonzero(~np.isnan(block))


def test_projection_keeps_the_similarity_ranking():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(4, 3000))
    x = np.concatenate([c + rng.normal(scale=s, size=(25, 3000)) for c, s in zip(centers, (0.5, 1, 2, 4))])
    exact = block_similarity(x).mean_sim
    proj = block_similarity(rademacher_project(x, 512, seed=3)).mean_sim
    rank = lambda v: np.argsort(np.argsort(v))
    rho = np.corrcoef(rank(exact), rank(proj))[0, 1]
    assert rho > 0.9
    assert np.array_equal(rademacher_project(x[:3], 64, 3), rademacher_project(x[:3], 64, 3))


def test_auroc_counts_pairs():
    pos, neg = np.array([0.9, 0.4, 0.4]), np.array([0.4, 0.1])
    direct = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg])
    assert auroc(pos, neg) == pytest.approx(direct)
    assert auroc(pos, np.array([])) is None


def _workspace_with_labels(ws, rows):
    from curator.analysis.labels import LabelConfig, label
    from curator.store import utcnow

    ids = [f"e{i}" for i in range(len(rows))]
    ws.write("examples", pd.DataFrame({"example_id": ids, "dataset": "lab", "row_index": range(len(rows)),
                                       "prompt": [r["prompt"] for r in rows], "answer": [r["answer"] for r in rows],
                                       "ingested_at": utcnow()}))
    ws.write("runs", pd.DataFrame([
        {"run_id": "init", "kind": "probe", "model": str(LAB_MODEL), "config": "{}", "status": "finished",
         "started_at": utcnow(), "steps": 0},
        {"run_id": "r", "kind": "train", "model": str(LAB_MODEL), "config": "{}", "status": "finished",
         "started_at": utcnow(), "steps": 2, "initial_run": "init"}]))
    zero = {"n_timeout": 0, "n_error": 0, "temperature": 0.7}
    ws.write("evals", pd.DataFrame([{"run_id": "init", "step": 0, "example_id": e, "n": 8, "n_correct": i % 3, **zero}
                                    for i, e in enumerate(ids)]
                                   + [{"run_id": "r", "step": 2, "example_id": e, "n": 8, "n_correct": (i % 4) * 2,
                                       **zero} for i, e in enumerate(ids)]))
    ws.write("history", pd.DataFrame([{"run_id": "r", "step": 1, "example_id": e, "n": 8, "n_correct": 1,
                                       "n_timeout": 0, "n_error": 0, "kept": True} for e in ids]))
    ws.write("rollouts", pd.DataFrame([{"run_id": "init", "phase": "eval", "step": 0, "example_id": e,
                                        "sample_index": j, "completion": r["solution"], "status": "correct",
                                        "reward": 1.0, "length": 10}
                                       for e, r in zip(ids, rows) for j in range(2)]))
    label(ws, LabelConfig())


def test_shards_merge_to_the_unsharded_result_and_reruns_skip(tmp_path):
    from curator.analysis.gradsim import GradSimConfig, gradsim
    from curator.store import Workspace

    rows = _lab_rows(10)
    with Workspace(tmp_path / "one.duckdb") as ws:
        _workspace_with_labels(ws, rows)
        s = gradsim(ws, GradSimConfig(dim=256, chunk_examples=3))
        assert s.computed == 10 and s.skipped == 0
        whole = dict(ws.sql("SELECT example_id, mean_sim FROM gradsim").fetchall())
        again = gradsim(ws, GradSimConfig(dim=256, chunk_examples=3))
        assert again.computed == 0 and again.skipped == 10
    shards = tmp_path / "shards"
    with Workspace(tmp_path / "two.duckdb") as ws:
        _workspace_with_labels(ws, rows)
    for i in range(3):
        with Workspace(tmp_path / "two.duckdb", read_only=True) as ro:
            out = gradsim(ro, GradSimConfig(dim=256, shard=(i, 3), shard_dir=str(shards)))
            assert out.shard_file
    with Workspace(tmp_path / "two.duckdb") as ws:
        merged = gradsim(ws, GradSimConfig(dim=256, merge_dir=str(shards)))
        got = dict(ws.sql("SELECT example_id, mean_sim FROM gradsim").fetchall())
    assert merged.config_id == s.config_id
    assert got.keys() == whole.keys()
    for k in whole:
        assert got[k] == pytest.approx(whole[k], abs=1e-6)
