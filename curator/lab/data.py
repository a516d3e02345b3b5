"""The lab's default splits, and writing them as jsonl that ingest maps automatically."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from curator.lab.config import LabConfig
from curator.lab.problems import Problem, generate


def splits(config: LabConfig) -> dict[str, list[Problem]]:
    """train and eval pools: distinct prompts, pure in the config."""
    train = generate(config.buckets, config.train_size, seed=config.data_seed)
    evals = generate(config.buckets, config.eval_size, seed=config.data_seed + 1,
                     exclude={p.prompt for p in train})
    return {"train": train, "eval": evals}


def write_splits(config: LabConfig, folder: str | Path) -> dict[str, Path]:
    """Write `<folder>/<split>.jsonl` (fields prompt, answer, solution, bucket, ...)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, problems in splits(config).items():
        path = folder / f"{name}.jsonl"
        tmp = path.with_suffix(".jsonl.partial")
        with tmp.open("w") as f:
            for p in problems:
                f.write(json.dumps(asdict(p)) + "\n")
        tmp.replace(path)
        out[name] = path
    return out
