"""The gradsim stage: per-example gradient vectors, then block-wise cosine similarity by label group.

    gradsim(workspace, GradSimConfig()) -> GradSimSummary

Rollouts: the correct completions of the initial-model evaluation (the probe
run the labelled train runs share), at most 20 per example. Every correct
rollout of an example has the same positive group advantage, and cosine
similarity ignores a positive scale, so A = 1. Vectors: the fixed random
LoRA adapter's B gradients (`curator.trainers.gradients`), optionally
projected to `dim` dimensions with a seeded Rademacher matrix (`dim=0`: exact).

Vectors are stored once in `gradients` (keyed by a config hash), written every
chunk of examples, so a killed pass resumes where it stopped. `shard=(i, n)`
computes only the examples whose id hashes to shard i, and writes parquet into
`shard_dir` instead of the workspace (open read-only, so shards can run side
by side); `merge_dir` loads those files and computes the similarities.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curator.errors import CuratorError
from curator.store import Workspace, utcnow


@dataclass
class GradSimConfig:
    label_set: str | None = None  # default: the most recent label set
    model: str | None = None  # default: the labelled runs' initial model
    max_rollouts: int = 20
    dim: int = 8192  # Rademacher projection dimension; 0 keeps the exact vectors
    projection_seed: int = 0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_seed: int = 42
    batch_rows: int = 128
    chunk_examples: int = 32  # examples per write (the resume granularity)
    threads: int = 1
    shard: tuple[int, int] | None = None  # (i, n): compute only shard i of n
    shard_dir: str | None = None
    merge_dir: str | None = None

    def __post_init__(self) -> None:
        if self.shard and not (0 <= self.shard[0] < self.shard[1]):
            raise CuratorError(f"--shard i/n needs 0 <= i < n, got {self.shard[0]}/{self.shard[1]}")
        if self.shard and not self.shard_dir:
            raise CuratorError("--shard needs --shard-dir: shards write parquet files there for --merge")
        if self.dim < 0 or self.max_rollouts < 1:
            raise CuratorError("--dim must be >= 0 (0: exact) and --max-rollouts >= 1")


@dataclass
class GradSimSummary:
    config_id: str
    label_set: str
    computed: int
    skipped: int  # already in the workspace
    without_rollouts: int  # no correct rollout stored: no vector
    group_mean: dict[str, float] = field(default_factory=dict)
    group_matrix: dict[str, dict[str, float]] = field(default_factory=dict)
    auroc_unlearnable_vs_learnable: float | None = None
    shard_file: str | None = None


def _label_set(ws: Workspace, name: str | None) -> tuple[str, list[str], str]:
    row = ws.sql("SELECT label_set, run_ids, config FROM label_sets "
                 + ("WHERE label_set = ? " if name else "") + "ORDER BY created_at DESC LIMIT 1",
                 [name] if name else []).fetchone()
    if not row:
        raise CuratorError(f"no label set {name!r}" if name else "no labels yet; run `curator label` first")
    return row[0], json.loads(row[1]), json.loads(row[2])["initial_run"]


def _rollouts(ws: Workspace, initial_run: str, k: int) -> pd.DataFrame:
    return ws.df(
        "SELECT r.example_id, e.prompt, r.completion FROM rollouts r JOIN examples e USING (example_id) "
        "WHERE r.run_id = ? AND r.phase = 'eval' AND r.status = 'correct' "
        "QUALIFY row_number() OVER (PARTITION BY r.example_id ORDER BY r.sample_index) <= ? "
        "ORDER BY r.example_id, r.sample_index", [initial_run, k])


def _in_shard(example_id: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    return int(hashlib.sha256(example_id.encode()).hexdigest()[:8], 16) % shard[1] == shard[0]


def config_id(model: str, config: GradSimConfig, initial_run: str) -> str:
    keep = {k: v for k, v in asdict(config).items()
            if k in ("max_rollouts", "dim", "projection_seed", "lora_r", "lora_alpha", "lora_seed")}
    blob = json.dumps({"model": model, "rollouts_from": initial_run, **keep}, sort_keys=True)
    return "g-" + hashlib.sha256(blob.encode()).hexdigest()[:10]


def gradsim(ws: Workspace, config: GradSimConfig, advance=lambda n: None) -> GradSimSummary:
    label_set, runs, initial_run = _label_set(ws, config.label_set)
    model = config.model or ws.sql("SELECT model FROM runs WHERE run_id = ?", [initial_run]).fetchone()[0]
    cid = config_id(model, config, initial_run)
    summary = GradSimSummary(cid, label_set, 0, 0, 0)
    if config.merge_dir:
        _merge(ws, cid, config)
    else:
        _gradient_pass(ws, config, model, cid, initial_run, summary, advance)
    if config.shard:
        return summary
    _similarity(ws, cid, label_set, summary)
    return summary


def _gradient_pass(ws, config, model, cid, initial_run, summary, advance) -> None:
    rollouts = _rollouts(ws, initial_run, config.max_rollouts)
    if rollouts.empty:
        raise CuratorError(
            f"the initial-model eval {initial_run} kept no correct completions; re-run `curator train` "
            "(it keeps them by default) or `curator probe --keep-completions correct`"
        )
    labelled = ws.sql("SELECT count(DISTINCT example_id) FROM evals WHERE run_id = ?", [initial_run]).fetchone()[0]
    ids = [e for e in rollouts.example_id.unique() if _in_shard(e, config.shard)]
    summary.without_rollouts = labelled - rollouts.example_id.nunique()
    done = set()
    if not config.shard:
        done = {r[0] for r in ws.sql("SELECT example_id FROM gradients WHERE config_id = ?", [cid]).fetchall()}
        ws.write("gradient_configs", pd.DataFrame([{
            "config_id": cid, "config": json.dumps(asdict(config) | {"model": model, "initial_run": initial_run},
                                                   default=str), "created_at": utcnow()}]), on_conflict="ignore")
    todo = [e for e in ids if e not in done]
    summary.skipped = len(ids) - len(todo)
    if not todo:
        return

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curator.analysis.similarity import rademacher_project
    from curator.trainers.gradients import GradConfig, attach_random_lora, rollout_gradients

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the stage shows its own progress
    torch.set_num_threads(config.threads)
    tok = AutoTokenizer.from_pretrained(model)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = attach_random_lora(AutoModelForCausalLM.from_pretrained(model).to(device),
                             GradConfig(config.lora_r, config.lora_alpha, config.lora_seed))
    by_id = {e: g for e, g in rollouts.groupby("example_id", sort=False)}
    shard_rows = []
    for start in range(0, len(todo), config.chunk_examples):
        chunk = todo[start : start + config.chunk_examples]
        part = pd.concat([by_id[e] for e in chunk])
        grads = rollout_gradients(net, tok, part.prompt.tolist(), part.completion.tolist(),
                                  torch.ones(len(part)), config.batch_rows).numpy()
        owner = part.example_id.to_numpy()
        means = np.stack([grads[owner == e].mean(0) for e in chunk])
        if config.dim:
            means = rademacher_project(means, config.dim, config.projection_seed)
        rows = pd.DataFrame({"config_id": cid, "example_id": chunk,
                             "n_rollouts": [int((owner == e).sum()) for e in chunk],
                             "dim": means.shape[1], "vector": list(means.astype(np.float32))})
        if config.shard:
            shard_rows.append(rows)
        else:
            ws.write("gradients", rows)
        summary.computed += len(chunk)
        advance(len(chunk))
    if config.shard:
        out = Path(config.shard_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{cid}-shard{config.shard[0]}of{config.shard[1]}.parquet"
        pd.concat(shard_rows).to_parquet(path.with_suffix(".partial"))
        path.with_suffix(".partial").replace(path)
        summary.shard_file = str(path)


def _merge(ws: Workspace, cid: str, config: GradSimConfig) -> None:
    files = sorted(Path(config.merge_dir).glob(f"{cid}-shard*.parquet"))
    if not files:
        raise CuratorError(f"no shard files for config {cid} in {config.merge_dir}; run `curator gradsim --shard i/n` "
                           "with the same settings first")
    for f in files:
        ws.write("gradients", pd.read_parquet(f), on_conflict="ignore")


def _similarity(ws: Workspace, cid: str, label_set: str, summary: GradSimSummary) -> None:
    from curator.analysis.similarity import auroc, block_similarity

    data = ws.df("SELECT g.example_id, g.vector, l.label FROM gradients g JOIN labels l "
                 "ON l.example_id = g.example_id AND l.label_set = ? WHERE g.config_id = ? ORDER BY g.example_id",
                 [label_set, cid])
    if len(data) < 2:
        raise CuratorError("fewer than two examples have gradient vectors: nothing to compare")
    vectors = np.stack(data.vector.to_numpy()).astype(np.float32)
    res = block_similarity(vectors, data.label.tolist())
    by_group = [json.dumps({g: (None if np.isnan(v) else float(v)) for g, v in zip(res.groups, row)})
                for row in res.by_group]
    gs = pd.DataFrame({"config_id": cid, "example_id": data.example_id, "mean_sim": res.mean_sim,
                       "label_set": label_set, "label": data.label, "sim_by_group": by_group})
    pairs = [{"config_id": cid, "label_set": label_set, "group_a": a, "group_b": b,
              "mean_sim": None if np.isnan(res.group_matrix[i, j]) else float(res.group_matrix[i, j]),
              "n_pairs": int(res.group_pairs[i, j])}
             for i, a in enumerate(res.groups) for j, b in enumerate(res.groups)]
    with ws.transaction():
        ws.execute("DELETE FROM gradsim WHERE config_id = ? AND label_set = ?", [cid, label_set])
        ws.execute("DELETE FROM gradsim_groups WHERE config_id = ? AND label_set = ?", [cid, label_set])
        ws.write("gradsim", gs)
        ws.write("gradsim_groups", pd.DataFrame(pairs))
    summary.group_mean = {g: float(np.mean(res.mean_sim[data.label.to_numpy() == g])) for g in res.groups}
    summary.group_matrix = {a: {b: float(res.group_matrix[i, j]) for j, b in enumerate(res.groups)}
                            for i, a in enumerate(res.groups)}
    lab = data.label.to_numpy()
    # positives: unlearnable; a lower similarity should flag them, so score = -mean_sim
    summary.auroc_unlearnable_vs_learnable = auroc(-res.mean_sim[lab == "unlearnable"],
                                                   -res.mean_sim[lab == "learnable"])
