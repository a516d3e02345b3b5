"""A synthetic workspace with rows in every table the report reads.

`build_workspace(path, ...)` writes a real DuckDB file through `Workspace` (all
migrations applied): datasets, examples, quarantine, a probe run and train runs
with their history and evals, stored rollouts, labels and scores from the real
`curator label` stage, gradient similarity, judgments with per-example
reasoning, and an export with its drops. Everything is drawn from a seeded
generator, so the same arguments give the same workspace.

Beside them, by default: an `import` run (another trainer's history, linked to
the probe, with importer warnings), and a prediction set learned from the
labels (metrics in the shape `curator predict` stores, built from its own
dataclasses) with predicted labels for a second, separately probed dataset of
`n_new` unlabelled examples.

`xss` (a string) is appended to, or used as, every free-text field: dataset
name, source, mapping column names, meta keys and values, prompts, answers,
solutions, some example ids, run ids' model names and config values, judge
model, rationales, completions, gradient config, export destination and
formats, drop reasons, quarantine reasons and raw rows, the import's importer
name, source and warnings, and the prediction set's model, reference label
set, warnings, notes and feature names.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

XSS_CORPUS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "</style><script>alert(2)</script>",
    "<svg onload=alert(1)>",
    "{{7*7}}",
    "]]>",
    "&lt;script&gt;",
    "\u2028\u2029",
    "'--></title><iframe src=//evil.example>",
]
XSS = " ".join(XSS_CORPUS)

T0 = datetime(2024, 1, 1, 12, 0, 0)
TYPES = ("easy", "learnable", "unlearnable", "never", "unstable")
TYPE_P = (0.35, 0.12, 0.25, 0.13, 0.15)


def build_workspace(path: str | Path, n_examples: int = 384, n_steps: int = 60, n_runs: int = 3,
                    prompts_per_step: int = 16, group_size: int = 8, eval_n: int = 32, xss: str = "",
                    seed: int = 0, judge_share: float = 1.0, tables: str = "all", keep: int | None = None,
                    imported: bool = True, predict: bool = True, n_new: int | None = None) -> Path:
    """Write the workspace and return its path.

    tables: "all", or "examples" for a workspace with only datasets / examples / quarantine.
    keep: rollouts stored per training step, correct and incorrect each (default: a handful).
    imported: add an `import` run (half as many steps, linked to the probe, two importer warnings).
    predict: add a prediction set; n_new: unlabelled examples it predicts (default n_examples, 0: none).
    """
    from curator.analysis.labels import LabelConfig, label
    from curator.store import Workspace

    path = Path(path)
    rng = np.random.default_rng(seed)
    x = xss
    with Workspace(path) as ws:
        ids = [f"ex{i:06d}" + (x if x and i % 7 == 3 else "") for i in range(n_examples)]
        a = rng.integers(1, 999, n_examples)
        b = rng.integers(1, 999, n_examples)
        kinds = rng.choice(len(TYPES), n_examples, p=TYPE_P)
        dataset = "lab" + (f" {x}" if x else "")
        ws.write("datasets", pd.DataFrame([{
            "dataset": dataset, "source": f"data/lab/train.jsonl{x}", "split": "train", "revision": "abc123",
            "mapping": json.dumps({"schema": "generic", "prompt_field": "question" + x, "answer_field": "answer" + x,
                                   "solution_field": None, "id_field": None} | ({x: x} if x else {})),
            "n_rows": n_examples + 3, "n_kept": n_examples, "n_quarantined": 3,
            "first_ingested_at": T0, "last_ingested_at": T0}]))
        ws.write("examples", pd.DataFrame({
            "example_id": ids, "dataset": dataset, "row_index": np.arange(n_examples),
            "prompt": [f"{p}+{q}= {x}".strip() for p, q in zip(a, b)],
            "answer": [f"{p + q}{x}" for p, q in zip(a, b)],
            "solution": [f"{p}+{q}={p + q};\\boxed{{{p + q}}}{x}" for p, q in zip(a, b)],
            "meta": [json.dumps({"bucket": f"add {TYPES[k]}", "note": x} | ({x: x} if x else {})) for k in kinds],
            "ingested_at": T0}))
        ws.write("quarantine", pd.DataFrame({
            "dataset": dataset, "row_index": [n_examples, n_examples + 1, n_examples + 2],
            "reason": [f"empty prompt{x}", f"gold answer does not parse; duplicate{x}", f"duplicate{x}"],
            "raw": [json.dumps({"question": "", "answer": x}), json.dumps({"question": x, "answer": "?"}),
                    json.dumps({"question": "1+1=", "answer": "2" + x})],
            "ingested_at": T0}))
        if tables == "examples":
            return path

        p0 = np.where(kinds == 0, rng.uniform(0.25, 0.95, n_examples),
                      np.where(kinds == 3, 0.0, rng.uniform(0.0, 0.09, n_examples)))
        probe = "probe-initial"
        runs = [{"run_id": probe, "kind": "probe", "model": f"lab-model{x}", "backend": "hf", "seed": None,
                 "config": json.dumps({"eval": {"n": eval_n, "temperature": 0.7}, "purpose": "initial model" + x}),
                 "status": "finished", "started_at": T0, "finished_at": T0 + timedelta(minutes=1),
                 "last_step": 0, "initial_run": None, "steps": 0}]
        seeds = [1, 42, 37, 7, 11, 13][:n_runs]
        run_ids = [f"grpo-s{s}" for s in seeds]
        for r, s in zip(run_ids, seeds):
            cfg = {"model": f"lab-model{x}", "seeds": seeds, "name": f"grpo{x}", "steps": n_steps,
                   "prompts_per_step": prompts_per_step, "group_size": group_size, "lr": 1e-4, "clip_low": 0.2,
                   "clip_high": 0.2, "kl_coef": 0.0, "minibatches": 1, "dynamic_sampling": True, "lora": False,
                   "max_new_tokens": 48, "keep_completions": "correct" + x,
                   "eval": {"n": eval_n, "temperature": 0.7, "seed": 0, "every": 0}, "seed": s}
            runs.append({"run_id": r, "kind": "train", "model": f"lab-model{x}", "backend": "hf", "seed": s,
                         "config": json.dumps(cfg), "status": "finished", "started_at": T0 + timedelta(minutes=2),
                         "finished_at": T0 + timedelta(minutes=10), "last_step": n_steps, "initial_run": probe,
                         "steps": n_steps})
        ws.write("runs", pd.DataFrame(runs))

        # per-run final accuracy: learnable rise, unlearnable and never stay low, unstable rise in some runs only
        finals = []
        for ri in range(n_runs):
            up = rng.random(n_examples) < 0.5
            f = np.select([kinds == 0, kinds == 1, kinds == 2, kinds == 3, kinds == 4],
                          [np.minimum(1, p0 + 0.1), rng.uniform(0.3, 0.8, n_examples), rng.uniform(0, 0.06, n_examples),
                           np.zeros(n_examples), np.where(up | (ri == 0), rng.uniform(0.2, 0.6, n_examples), 0.02)])
            finals.append(f)
        hist, rolls = [], []
        n_draw = min(prompts_per_step, n_examples)
        for ri, run in enumerate(run_ids):
            for step in range(1, n_steps + 1):
                t = step / n_steps
                drawn = rng.choice(n_examples, n_draw, replace=False)
                p = np.clip(p0[drawn] + (finals[ri][drawn] - p0[drawn]) * t, 0, 1)
                p = np.where(kinds[drawn] == 2, np.maximum(p, 0.08), p)  # unlearnable: solved now and then
                p = np.where(kinds[drawn] == 3, 0.0, p)
                c = rng.binomial(group_size, p)
                hist.append(pd.DataFrame({
                    "run_id": run, "step": step, "example_id": [ids[i] for i in drawn], "n": group_size,
                    "n_correct": c, "n_timeout": 0, "n_error": 0, "mean_length": rng.uniform(10, 30, n_draw),
                    "clip_frac_correct": 0.0, "clip_frac_incorrect": 0.0, "kept": (c > 0) & (c < group_size)}))
                if keep is None:
                    hit = np.flatnonzero(c > 0)[:4] if step % 3 == 0 else np.flatnonzero(c > 0)[:1]
                    miss = np.flatnonzero(c == 0)[:1]
                else:
                    hit, miss = np.flatnonzero(c > 0)[:keep], np.flatnonzero(c == 0)[:keep]
                for j in list(hit) + list(miss):
                    i = drawn[j]
                    ok = c[j] > 0
                    ans = a[i] + b[i] if ok else a[i] + b[i] + 1
                    rolls.append((run, step, ids[i], 0, "train",
                                  f"{a[i]}+{b[i]}={ans} {x} \\boxed{{{ans}}}", "correct" if ok else "incorrect",
                                  1.0 if ok else 0.0, 12))
        history = pd.concat(hist, ignore_index=True)
        ws.write("history", history)
        ws.write("rollouts", pd.DataFrame(rolls, columns=["run_id", "step", "example_id", "sample_index", "phase",
                                                          "completion", "status", "reward", "length"]))
        evals = [pd.DataFrame({"run_id": probe, "step": 0, "example_id": ids, "n": eval_n,
                               "n_correct": rng.binomial(eval_n, p0), "n_timeout": 0, "n_error": 0,
                               "temperature": 0.7})]
        for ri, run in enumerate(run_ids):
            evals.append(pd.DataFrame({"run_id": run, "step": n_steps, "example_id": ids, "n": eval_n,
                                       "n_correct": rng.binomial(eval_n, finals[ri]), "n_timeout": 0, "n_error": 0,
                                       "temperature": 0.7}))
        ws.write("evals", pd.concat(evals, ignore_index=True))

        summary = label(ws, LabelConfig())
        ls = summary.label_set
        ws.execute("UPDATE label_sets SET created_at = ?", [T0 + timedelta(minutes=20)])
        labs = ws.df("SELECT example_id, label FROM labels WHERE label_set = ?", [ls])

        # gradient similarity: unlearnable examples low, as in the paper
        mu = {"easy": 0.004, "learnable": 0.003, "unlearnable": -0.002, "never_solved": -0.004, "unstable": 0.0}
        cid = "g-" + "0" * 10
        ws.write("gradient_configs", pd.DataFrame([{
            "config_id": cid, "config": json.dumps({"model": f"lab-model{x}", "dim": 8192, "rank": 16, "note": x}),
            "created_at": T0 + timedelta(minutes=30)}]))
        gs = labs.assign(config_id=cid, label_set=ls,
                         mean_sim=[mu[lab_] + rng.normal(0, 0.002) for lab_ in labs.label],
                         sim_by_group="{}")
        ws.write("gradsim", gs)
        groups = sorted(labs.label.unique())
        ws.write("gradsim_groups", pd.DataFrame([
            {"config_id": cid, "label_set": ls, "group_a": g1, "group_b": g2,
             "mean_sim": (mu[g1] + mu[g2]) / 2 + 0.001 * (g1 == g2), "n_pairs": 100}
            for g1 in groups for g2 in groups]))

        # judgments of stored correct training rollouts, with per-example reasoning
        lab_of = dict(zip(labs.example_id, labs.label))
        correct = ws.df("SELECT example_id, run_id, step, sample_index FROM rollouts WHERE status = 'correct' "
                        "ORDER BY run_id, step, example_id")
        correct = correct[rng.random(len(correct)) < judge_share].reset_index(drop=True)
        base = {"easy": 4.6, "learnable": 4.2, "unlearnable": 3.2, "never_solved": 3.0, "unstable": 3.8}
        score = np.clip(np.round([base.get(lab_of.get(e), 4.0) + rng.normal(0, 1.0) for e in correct.example_id]),
                        0, 5)
        status = np.where(rng.random(len(correct)) < 0.02, "judge_error", "ok")
        judgments = correct.assign(
            judge="step_checker", model=None, rubric_version="v1", text_hash=[f"h{i}" for i in range(len(correct))],
            score=np.where(status == "ok", score, np.nan), status=status,
            rationale=[f"step 2 is wrong {x}" if s < 5 else f"all steps check out {x}" for s in score],
            created_at=T0 + timedelta(minutes=40))
        ws.write("judgments", judgments)
        ok = judgments[judgments.status == "ok"]
        per = ok.groupby("example_id").score.agg(["count", "mean", "std"]).reset_index()
        ws.write("reasoning", pd.DataFrame({
            "example_id": per.example_id, "judge": "step_checker", "model": "", "rubric_version": "v1",
            "n_judged": per["count"], "n_failed": 0, "mean_score": per["mean"], "std_score": per["std"].fillna(0)}))

        # one export that dropped unlearnable and never_solved examples
        dropped = labs[labs.label.isin(["unlearnable", "never_solved"])]
        ws.write("exports", pd.DataFrame([{
            "export_id": "x-0000000001", "created_at": T0 + timedelta(minutes=50),
            "destination": f"curator-export{x}", "formats": json.dumps(["jsonl", "parquet", x] if x else ["jsonl"]),
            "config": json.dumps({"order": "staged", "drop": ["unlearnable", "never_solved"], "where": x or None}),
            "n_in": len(labs), "n_kept": len(labs) - len(dropped), "n_dropped": len(dropped)}]))
        ws.write("export_drops", pd.DataFrame({
            "export_id": "x-0000000001", "example_id": dropped.example_id,
            "reason": [f"label {lab_}{x}" for lab_ in dropped.label]}))
        if imported:
            add_import(ws, rng, ids, p0, n_steps=max(2, n_steps // 2), prompts_per_step=prompts_per_step,
                       group_size=group_size, probe=probe, xss=x)
        if predict:
            add_predictions(ws, rng, labs, ls, probe, n_examples if n_new is None else n_new, eval_n=eval_n,
                            xss=x)
        ws.checkpoint()
    return path


def add_import(ws, rng, ids: list[str], p0: np.ndarray, *, n_steps: int, prompts_per_step: int, group_size: int,
               probe: str, xss: str = "") -> str:
    """An `import` run as `curator import` writes it: history only, importer as backend, config with the
    source and the importer's warnings, linked to the initial probe (no final probe: not labelled)."""
    x = xss
    run_id = "import-verl-" + "a" * 10
    n = len(ids)
    n_draw = min(prompts_per_step, n)
    hist = []
    for step in range(1, n_steps + 1):
        if step % 7 == 3:  # a step the trainer's dynamic sampling filtered: nothing logged
            continue
        drawn = rng.choice(n, n_draw, replace=False)
        p = np.clip(p0[drawn] + 0.15 * step / n_steps, 0, 1)
        c = rng.binomial(group_size, p)
        hist.append(pd.DataFrame({
            "run_id": run_id, "step": step, "example_id": [ids[i] for i in drawn], "n": group_size, "n_correct": c,
            "n_timeout": 0, "n_error": 0, "mean_length": rng.uniform(10, 30, n_draw), "clip_frac_correct": np.nan,
            "clip_frac_incorrect": np.nan, "kept": True}))
    history = pd.concat(hist, ignore_index=True)
    last = int(history.step.max())
    warnings = [f"steps 3, 10, 17 have no records: they look filtered by dynamic sampling{x}",
                f"40 of {len(history) * group_size + 40} records match no example in the workspace (by id or prompt "
                f"text) and were not imported{x}"]
    ws.write("runs", pd.DataFrame([{
        "run_id": run_id, "kind": "import", "model": f"lab-model{x}", "backend": f"verl{x}", "seed": None,
        "config": json.dumps({"source": f"/data/verl/rollout_data{x}", "importer": f"verl{x}", "warnings": warnings,
                              "initial_probe": probe, "final_probe": None, "index_key": "index"}),
        "status": "finished", "started_at": T0 + timedelta(minutes=55), "finished_at": T0 + timedelta(minutes=56),
        "last_step": last, "initial_run": probe, "steps": last}]))
    ws.write("history", history)
    return run_id


def add_predictions(ws, rng, labs: pd.DataFrame, ls: str, probe: str, n_new: int, *, eval_n: int = 32,
                    xss: str = "") -> str:
    """A prediction set over the labels `labs` of label set `ls` and, for n_new new examples in their own
    dataset with their own probe run, predicted labels. Metrics are synthetic but in `curator predict`'s own
    shape (its dataclasses and `metrics_dict`); with fewer than MIN_TRUSTED labelled examples they carry its
    "too few to trust" warning."""
    from dataclasses import asdict

    from curator.analysis.predict import MIN_TRUSTED, LabelMetrics, PredictConfig, PredictSummary, metrics_dict

    x = xss
    ps = "ps-" + "1" * 10
    created = T0 + timedelta(minutes=45)
    classes = sorted(labs.label.unique())
    n_lab = len(labs)
    holdout = labs.example_id.map(lambda e: hash_share(e) < 0.25).to_numpy()
    per_label = []
    for c in classes:
        n_cv = int(((labs.label == c).to_numpy() & ~holdout).sum())
        n_ho = int(((labs.label == c).to_numpy() & holdout).sum())
        if c == "easy":
            per_label.append(LabelMetrics(c, n_cv, 1.0, (1.0, 1.0), None, n_ho, 1.0, (1.0, 1.0), None, n_ho, 1.0,
                                          (1.0, 1.0), None))
            continue
        a, h, r = (float(v) for v in rng.uniform(0.7, 0.97, 3))
        ne = [float(v) for v in rng.uniform(0.5, 0.8, 3)]
        band = lambda v, w: (max(0.0, v - w), min(1.0, v + w))  # noqa: E731
        per_label.append(LabelMetrics(c, n_cv, a, band(a, 0.04), ne[0], n_ho, h, band(h, 0.08), ne[1], n_ho, r,
                                      band(r, 0.08), ne[2]))
    warnings = [f"held-out labels with fewer than 10 examples: learnable (4); their held-out AUROCs rest on a "
                f"handful of positives{x}"]
    if n_lab < MIN_TRUSTED:
        warnings.insert(0, f"too few labelled examples to trust ({n_lab}); the AUROCs below have wide error")

    # the new examples: another dataset, probed on its own (same eval settings), no label
    kinds = rng.choice(len(TYPES), n_new, p=TYPE_P)
    names = {"never": "never_solved"}
    new_ids = [f"new{i:06d}" + (x if x and i % 5 == 2 else "") for i in range(n_new)]
    a = rng.integers(1, 999, n_new)
    b = rng.integers(1, 999, n_new)
    dataset = "lab-eval" + (f" {x}" if x else "")
    p0 = np.where(kinds == 0, rng.uniform(0.25, 0.95, n_new), np.where(kinds == 3, 0.0, rng.uniform(0, 0.09, n_new)))
    rows = []
    if n_new:
        ws.write("datasets", pd.DataFrame([{
            "dataset": dataset, "source": f"data/lab/eval.jsonl{x}", "split": "test", "revision": "def456",
            "mapping": json.dumps({"schema": "generic", "prompt_field": "question", "answer_field": "answer"}),
            "n_rows": n_new, "n_kept": n_new, "n_quarantined": 0,
            "first_ingested_at": T0 + timedelta(minutes=42), "last_ingested_at": T0 + timedelta(minutes=42)}]))
        ws.write("examples", pd.DataFrame({
            "example_id": new_ids, "dataset": dataset, "row_index": np.arange(n_new),
            "prompt": [f"{p}*{q}= {x}".strip() for p, q in zip(a, b)],
            "answer": [f"{p * q}{x}" for p, q in zip(a, b)],
            "solution": None, "meta": [json.dumps({"bucket": f"mul {TYPES[k]}"}) for k in kinds],
            "ingested_at": T0 + timedelta(minutes=42)}))
        probe_new = "probe-new"
        ws.write("runs", pd.DataFrame([{
            "run_id": probe_new, "kind": "probe", "model": f"lab-model{x}", "backend": "hf", "seed": None,
            "config": json.dumps({"eval": {"n": eval_n, "temperature": 0.7}}), "status": "finished",
            "started_at": T0 + timedelta(minutes=43), "finished_at": T0 + timedelta(minutes=44), "last_step": 0,
            "initial_run": None, "steps": 0}]))
        ws.write("evals", pd.DataFrame({"run_id": probe_new, "step": 0, "example_id": new_ids, "n": eval_n,
                                        "n_correct": rng.binomial(eval_n, p0), "n_timeout": 0, "n_error": 0,
                                        "temperature": 0.7}))
        truth = [names.get(TYPES[k], TYPES[k]) for k in kinds]
        alpha = np.full((n_new, len(classes)), 0.5)
        for i, t in enumerate(truth):
            if t in classes:
                alpha[i, classes.index(t)] += 3.0
        proba = np.array([rng.dirichlet(row) for row in alpha])
        rows = pd.DataFrame({
            "prediction_set": ps, "example_id": new_ids, "predicted_label": np.asarray(classes)[proba.argmax(1)],
            "probabilities": [json.dumps(dict(zip(classes, map(float, row)))) for row in proba],
            "created_at": created})
    predicted = {c: int((rows["predicted_label"] == c).sum()) for c in classes} if n_new else {}
    summary = PredictSummary(
        prediction_set=ps, label_set=ls, probe_run=probe, model=f"forest{x}", train_runs=[],
        reference_label_set=f"ls-reference{x}", n_labelled=n_lab, n_cv=int((~holdout).sum()),
        n_holdout=int(holdout.sum()), folds=5, classes=classes, per_label=per_label,
        macro_auroc=float(np.mean([m.auroc for m in per_label])), accuracy=0.78,
        confusion={t: {q: int(t == q) * 10 for q in classes} for t in classes},
        holdout_macro_auroc=float(np.mean([m.holdout_auroc for m in per_label])), holdout_accuracy=0.74,
        reference_macro_auroc=float(np.mean([m.reference_auroc for m in per_label])), reference_accuracy=0.72,
        reference_agreement=0.9, features=["pass1", "pass1_se", "pass_at_4", "prompt_chars", f"meta.note={x}"],
        not_used={"history, final evals, training judgments": "they come from training (would leak the label)",
                  f"meta.{x}": f"text with 384 distinct values, not a category{x}"},
        warnings=warnings, notes=[f"3 labelled examples have no eval in probe run {probe}; left out{x}"],
        n_predicted=n_new, predicted=predicted, apply_runs=["probe-new"] if n_new else [])
    config = asdict(PredictConfig(holdout=True)) | {"train_label_runs": [], "tau": 0.1}
    ws.write("prediction_sets", pd.DataFrame([{
        "prediction_set": ps, "label_set": ls, "probe_run": probe, "config": json.dumps(config, default=list),
        "metrics": json.dumps(metrics_dict(summary)), "created_at": created}]))
    if n_new:
        ws.write("predictions", rows)
    return ps


def hash_share(text: str) -> float:
    """A number in [0, 1) from the text's md5: a deterministic split."""
    import hashlib

    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:4], "big") / 2**32
