"""Atomic training checkpoints: a killed run resumes from the last complete one.

A checkpoint is a folder `step_00000025/` holding `state.pt` (weights,
optimizer, scheduler, every RNG state, the sampler position) and, written last,
`COMPLETE`. It is written under a temporary name and renamed into place, so a
folder without `COMPLETE` is never read. Older checkpoints beyond `keep` are
deleted after a new one is complete.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

MARKER = "COMPLETE"


def _name(step: int) -> str:
    return f"step_{step:08d}"


def save(folder: str | Path, step: int, state: dict, keep: int = 2) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / _name(step)
    tmp = folder / (_name(step) + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    (tmp / MARKER).write_text(str(step))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in complete(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(folder / _name(old), ignore_errors=True)
    return final


def complete(folder: str | Path) -> list[int]:
    """Steps of the complete checkpoints in `folder`, ascending."""
    folder = Path(folder)
    if not folder.exists():
        return []
    steps = []
    for d in folder.iterdir():
        if d.is_dir() and d.name.startswith("step_") and not d.name.endswith(".partial") and (d / MARKER).exists():
            steps.append(int(d.name[5:]))
    return sorted(steps)


def latest(folder: str | Path, at_most: int | None = None) -> int | None:
    """The newest complete checkpoint's step (not after `at_most`), or None."""
    steps = [s for s in complete(folder) if at_most is None or s <= at_most]
    return steps[-1] if steps else None


def load(folder: str | Path, step: int) -> dict:
    return torch.load(Path(folder) / _name(step) / "state.pt", weights_only=False)
