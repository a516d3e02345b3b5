"""Continuous learnability scores from the same history, beside the labels.

Pure functions over DataFrames; `compute_scores` reads the workspace once and
calls them. Per example (the README gives each a one-line definition):

- initial / final pass@1 and pass@k (unbiased 1 - C(n-c,k)/C(n,k)), final as the mean over runs
- LIMR learning impact: 1 - sum_e (acc_e - base_e)^2 / sum_e (1 - base_e)^2, where e indexes the
  example's successive draws in a run ("epochs": the sampler draws every example once per epoch),
  acc_e its accuracy at its e-th draw and base_e the mean accuracy of all examples at their e-th draw
  in that run; mean over runs
- historical std (One-Shot RLVR's selection score): population std of per-draw accuracy within a
  run, mean over runs
- Dataset Cartography confidence and variability: mean and population std of per-draw accuracy
  over every draw of every run
- learnability p (1 - p), p = initial pass@1
- slope: least-squares slope of per-draw accuracy against the step, per run, mean over runs
"""

from __future__ import annotations

import json
from math import comb

import numpy as np
import pandas as pd


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Unbiased pass@k, or None when fewer than k samples were drawn."""
    if k > n:
        return None
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def limr(history: pd.DataFrame) -> pd.Series:
    """LIMR learning impact per example from history rows (run_id, step, example_id, n, n_correct)."""
    h = history.assign(acc=history.n_correct / history.n).sort_values(["run_id", "step"])
    h["epoch"] = h.groupby(["run_id", "example_id"]).cumcount()
    base = h.groupby(["run_id", "epoch"]).acc.transform("mean")
    h = h.assign(num=(h.acc - base) ** 2, den=(1 - base) ** 2)
    per_run = h.groupby(["run_id", "example_id"])[["num", "den"]].sum()
    score = 1 - per_run.num / per_run.den.where(per_run.den > 0)
    return score.groupby("example_id").mean()


def historical_std(history: pd.DataFrame) -> pd.Series:
    h = history.assign(acc=history.n_correct / history.n)
    return h.groupby(["run_id", "example_id"]).acc.std(ddof=0).groupby("example_id").mean()


def cartography(history: pd.DataFrame) -> pd.DataFrame:
    h = history.assign(acc=history.n_correct / history.n)
    g = h.groupby("example_id").acc
    return pd.DataFrame({"confidence": g.mean(), "variability": g.std(ddof=0)})


def slope(history: pd.DataFrame) -> pd.Series:
    h = history.assign(acc=history.n_correct / history.n)

    def ols(df: pd.DataFrame) -> float:
        if len(df) < 2 or df.step.nunique() < 2:
            return np.nan
        x = df.step.to_numpy(float)
        y = df.acc.to_numpy(float)
        x = x - x.mean()
        return float((x * (y - y.mean())).sum() / (x * x).sum())

    per_run = h.groupby(["run_id", "example_id"])[["step", "acc"]].apply(ols)
    return per_run.groupby("example_id").mean()


def scores_frame(initial: pd.DataFrame, final: pd.DataFrame, history: pd.DataFrame, k: tuple[int, ...]) -> pd.DataFrame:
    """initial (example_id, n, n_correct), final (run_id, example_id, n, n_correct), history -> scores."""
    out = initial.set_index("example_id")
    frame = pd.DataFrame(index=out.index)
    frame["initial_pass1"] = out.n_correct / out.n
    f = final.assign(pass1=final.n_correct / final.n)
    frame["final_pass1_mean"] = f.groupby("example_id").pass1.mean()
    frame["final_pass1_by_run"] = f.groupby("example_id").apply(
        lambda d: json.dumps(dict(zip(d.run_id, d.pass1.round(6)))), include_groups=False)
    frame["initial_pass_at_k"] = [
        json.dumps({str(kk): pass_at_k(int(n), int(c), kk) for kk in k}) for n, c in zip(out.n, out.n_correct)
    ]
    fk = f.assign(**{f"k{kk}": [pass_at_k(int(n), int(c), kk) for n, c in zip(f.n, f.n_correct)] for kk in k})
    means = fk.groupby("example_id")[[f"k{kk}" for kk in k]].mean()
    frame["final_pass_at_k"] = [
        json.dumps({str(kk): (None if pd.isna(means.loc[e, f"k{kk}"]) else float(means.loc[e, f"k{kk}"]))
                    for kk in k}) if e in means.index else None
        for e in frame.index
    ]
    frame["train_draws"] = history.groupby("example_id").size()
    frame["train_correct"] = history.groupby("example_id").n_correct.sum()
    frame[["train_draws", "train_correct"]] = frame[["train_draws", "train_correct"]].fillna(0).astype(int)
    if len(history):
        frame["limr"] = limr(history)
        frame["hist_std"] = historical_std(history)
        frame = frame.join(cartography(history))
        frame["slope"] = slope(history)
    else:
        for col in ("limr", "hist_std", "confidence", "variability", "slope"):
            frame[col] = np.nan
    frame["learnability"] = frame.initial_pass1 * (1 - frame.initial_pass1)
    return frame.reset_index()


def compute_scores(ws, runs: list[str], initial_run: str, k: tuple[int, ...]) -> pd.DataFrame:
    initial = ws.df("SELECT example_id, n, n_correct FROM evals WHERE run_id = ? AND step = 0", [initial_run])
    final = ws.df(
        "SELECT e.run_id, e.example_id, e.n, e.n_correct FROM evals e JOIN runs r USING (run_id) "
        "WHERE e.run_id IN (SELECT unnest(?::VARCHAR[])) AND e.step = r.steps", [runs])
    history = ws.df("SELECT run_id, step, example_id, n, n_correct FROM history "
                    "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [runs])
    return scores_frame(initial, final, history, k)
