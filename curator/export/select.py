"""Which examples leave, in which order: filters that drop with a reason, and curriculum orders.

Pure functions over one DataFrame of candidates (examples joined with their
label and scores). A filter returns, per row, None (keep) or the reason it
drops the row; the first filter that drops a row names the reason. Orders
return the kept rows sorted; every order is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

ORDERS = ("original", "pass", "learnability", "limr", "gradsim", "staged", "mirrored-j")


@dataclass(frozen=True)
class Filter:
    name: str
    reasons: Callable[[pd.DataFrame], pd.Series]  # per row: None to keep, else why it is dropped


def drop_labels(labels: list[str]) -> Filter:
    return Filter("--drop", lambda f: f.label.map(lambda x: f"label {x} (--drop {','.join(labels)})"
                                                   if x in labels else None))


def keep_labels(labels: list[str]) -> Filter:
    return Filter("--keep", lambda f: f.label.map(
        lambda x: None if x in labels else f"label {x if isinstance(x, str) else 'none'} not in --keep {','.join(labels)}"))


def pass_band(lo: float, hi: float) -> Filter:
    def reasons(f: pd.DataFrame) -> pd.Series:
        p = f.initial_pass1
        def why(v):
            if pd.isna(v):
                return f"no initial pass@1 (--pass-band {lo}:{hi})"
            if v < lo:
                return f"initial pass@1 below {lo} (--pass-band {lo}:{hi})"
            return f"initial pass@1 above {hi} (--pass-band {lo}:{hi})" if v > hi else None

        return pd.Series([why(v) for v in p], index=f.index)
    return Filter("--pass-band", reasons)


def where_mask(sql: str, keep: pd.Series) -> Filter:
    """A --where predicate evaluated in DuckDB (see stage.py); `keep` is its per-row truth value."""
    return Filter("--where", lambda f: keep.reindex(f.index).map(lambda k: None if k else f"fails --where {sql}"))


def apply_filters(frame: pd.DataFrame, filters: list[Filter]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept rows, dropped rows with a `reason` column); the first dropping filter names the reason."""
    reason = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    for flt in filters:
        r = flt.reasons(frame)
        reason = reason.where(reason.notna(), r)
    dropped = frame[reason.notna()].assign(reason=reason[reason.notna()])
    return frame[reason.isna()], dropped


def order(frame: pd.DataFrame, how: str, seed: int = 0) -> pd.DataFrame:
    """Sort kept rows by a curriculum order (ties broken by example_id, so the result is deterministic)."""
    f = frame.copy()
    if how == "original":
        return f.sort_values(["dataset", "row_index"], kind="mergesort")
    if how == "pass":  # easy to hard
        return f.sort_values(["initial_pass1", "example_id"], ascending=[False, True], na_position="last")
    if how == "learnability":  # p(1-p), the most learnable first
        return f.sort_values(["learnability", "example_id"], ascending=[False, True], na_position="last")
    if how == "limr":
        return f.sort_values(["limr", "example_id"], ascending=[False, True], na_position="last")
    if how == "gradsim":  # the most typical gradients first
        return f.sort_values(["mean_sim", "example_id"], ascending=[False, True], na_position="last")
    if how == "staged":  # easy, then learnable, then the rest; easy to hard within a stage
        stage = f.label.map({"easy": 0, "learnable": 1}).fillna(2)
        return f.assign(_stage=stage).sort_values(["_stage", "initial_pass1", "example_id"],
                                                  ascending=[True, False, True]).drop(columns="_stage")
    if how == "mirrored-j":
        return mirrored_j(f, seed)
    raise ValueError(f"unknown order {how!r}; choose one of {', '.join(ORDERS)}")


def mirrored_j(frame: pd.DataFrame, seed: int = 0, pattern: tuple[int, int, int] = (7, 1, 2)) -> pd.DataFrame:
    """Mostly hard-but-reachable problems with some easy ones: interleave difficulty bands.

    Bands by initial pass@1: reachable (0, 0.3], medium (0.3, 0.7], easy (0.7, 1]; every round takes
    `pattern` = 7 reachable, 1 medium, 2 easy (shuffled within a band with `seed`) until the bands run
    out; problems never solved initially (pass@1 0 or unknown) come last.
    """
    p = frame.initial_pass1
    bands = [frame[(p > 0) & (p <= 0.3)], frame[(p > 0.3) & (p <= 0.7)], frame[p > 0.7]]
    rng = np.random.default_rng(seed)
    queues = [list(b.sort_values("example_id").index[rng.permutation(len(b))]) for b in bands]
    out: list = []
    while any(queues):
        for q, k in zip(queues, pattern):
            out.extend(q[:k])
            del q[:k]
    rest = frame[~frame.index.isin(out)].sort_values("example_id")
    return pd.concat([frame.loc[out], rest])
