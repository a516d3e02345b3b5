"""The learnability predictor on hand-made and synthetic workspaces: features, AUROC, warnings, predictions."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import curator_env
from curator.analysis.labels import LabelConfig, label, label_set_id
from curator.analysis.predict import (
    PredictConfig, build_features, load_features, merge_rare, predict, select_features,
)
from curator.errors import CuratorError
from curator.store import Workspace, utcnow

N = 32  # probe samples per example


def _examples(ids, rng, meta=True):
    rows = []
    for i, e in enumerate(ids):
        a, b = int(rng.integers(1, 999)), int(rng.integers(1, 99))
        m = {"bucket": ["add", "mul", "sub"][i % 3], "n_ops": 1 + i % 2} if meta else {}
        rows.append({"example_id": e, "dataset": "syn", "row_index": i, "prompt": f"{a}+{b}=", "answer": str(a + b),
                     "solution": None, "meta": json.dumps(m), "ingested_at": utcnow()})
    return pd.DataFrame(rows)


def _run(run_id, kind, steps=0, initial=None, seed=None):
    return {"run_id": run_id, "kind": kind, "config": "{}", "status": "finished", "started_at": utcnow(),
            "finished_at": utcnow(), "steps": steps, "initial_run": initial, "seed": seed}


def _evals(run_id, step, correct: dict[str, int]):
    return pd.DataFrame({"run_id": run_id, "step": step, "example_id": list(correct), "n": N,
                         "n_correct": list(correct.values()), "n_timeout": 0, "n_error": 0, "temperature": 0.7})


def _labelled_workspace(ws, labels: dict[str, str], correct: dict[str, int], seed=0):
    """Examples, a probe run's step-0 eval for every id in `correct`, and a stored label set over `labels`."""
    rng = np.random.default_rng(seed)
    ws.write("examples", _examples(sorted(correct), rng))
    ws.write("runs", pd.DataFrame([_run("probe", "probe"), _run("t1", "train", 10, "probe", 1)]))
    ws.write("evals", _evals("probe", 0, correct))
    ws.write("label_sets", pd.DataFrame([{"label_set": "ls-test", "tau": 0.1, "run_ids": json.dumps(["t1"]),
                                          "config": json.dumps({"initial_run": "probe"}), "created_at": utcnow()}]))
    ws.write("labels", pd.DataFrame({"label_set": "ls-test", "example_id": list(labels),
                                     "label": list(labels.values())}))


def _synthetic(n, seed=0, random_share=0.25):
    """pass@1 drawn uniform; 'easy' when a noisy copy of it is above 0.5, 'unstable' at random for a quarter."""
    rng = np.random.default_rng(seed)
    labels, correct = {}, {}
    for i in range(n):
        e = f"e{i:04d}"
        p = rng.uniform()
        correct[e] = int(rng.binomial(N, p))
        if rng.uniform() < random_share:
            labels[e] = "unstable"
        else:
            labels[e] = "easy" if p + rng.normal(0, 0.1) > 0.5 else "unlearnable"
    return labels, correct


# -- features -----------------------------------------------------------------


def _hand_made(ws):
    """Six examples with a probe, a train run with history, final evals, training judgments and gradsim."""
    ids = ["a", "b", "c", "d", "e", "f"]
    ws.write("examples", _examples(ids, np.random.default_rng(0)).assign(answer=["1", "22", "333", "4", "55", "-6"]))
    ws.write("runs", pd.DataFrame([_run("probe", "probe"), _run("t1", "train", 4, "probe", 1)]))
    ws.write("evals", pd.concat([_evals("probe", 0, dict(zip(ids, [0, 8, 32, 1, 2, 3]))),
                                 _evals("t1", 4, dict(zip(ids, [3, 9, 32, 0, 0, 0])))]))
    ws.write("history", pd.DataFrame({"run_id": "t1", "step": 1, "example_id": ids, "n": 8,
                                      "n_correct": [1, 2, 8, 0, 0, 1], "n_timeout": 0, "n_error": 0, "kept": True}))
    ws.write("gradient_configs", pd.DataFrame([{"config_id": "g1", "config": "{}", "created_at": utcnow()}]))
    ws.write("gradsim", pd.DataFrame({"config_id": "g1", "example_id": ["b", "c"], "mean_sim": [0.1, 0.3],
                                      "label_set": "x", "label": ["easy", "easy"],
                                      "sim_by_group": json.dumps({"easy": 0.5})}))
    ws.write("judgments", pd.DataFrame({"example_id": ["b", "c"], "run_id": "t1", "step": 1, "sample_index": 0,
                                        "judge": "step_checker", "rubric_version": "v", "text_hash": ["h1", "h2"],
                                        "score": [2.0, 5.0], "status": "ok", "created_at": utcnow()}))


def test_features_come_from_the_probe_and_the_examples_only(ws):
    _hand_made(ws)
    fs = load_features(ws, "probe")
    f = fs.frame
    assert list(f.index) == ["a", "b", "c", "d", "e", "f"]
    assert f.loc["b", "pass1"] == pytest.approx(8 / 32)
    assert f.loc["b", "pass1_se"] == pytest.approx(np.sqrt(0.25 * 0.75 / 32))
    assert f.loc["b", "pass_at_4"] == pytest.approx(1 - (24 * 23 * 22 * 21) / (32 * 31 * 30 * 29))
    assert f.loc["a", "pass1_posterior_std"] > 0  # spread even at 0 of 32
    # gradsim: imputed with the median and flagged, never dropped
    assert f.loc["a", "grad_mean_sim_missing"] == 1 and f.loc["a", "grad_mean_sim"] == pytest.approx(0.2)
    assert {"prompt_chars", "answer_chars", "answer_digits", "meta.n_ops", "meta.bucket=add"} <= set(f.columns)
    assert f.loc["f", "answer_negative"] == 1 and f.loc["c", "answer_digits"] == 3
    # nothing from training: no history, final-eval, sim_by_group or training-judge column
    assert not [c for c in f.columns if any(w in c for w in ("train", "final", "history", "group", "judge", "limr"))]
    assert "training rollouts" in fs.not_used["judge_probe_score"]
    assert "gradsim.sim_by_group" in fs.not_used
    # changing everything training wrote changes no feature
    ws.execute("UPDATE history SET n_correct = 0")
    ws.execute("UPDATE evals SET n_correct = 0 WHERE run_id = 't1'")
    ws.execute("DELETE FROM judgments")
    pd.testing.assert_frame_equal(load_features(ws, "probe").frame, f)


def test_build_features_takes_judge_scores_of_the_probe_and_reports_what_is_absent():
    probe = pd.DataFrame({"example_id": ["x", "y", "z"], "n": [4, 4, 4], "n_correct": [0, 2, 4]})
    examples = pd.DataFrame({"example_id": ["x", "y", "z"], "dataset": ["d1", "d2", "d1"],
                             "prompt": ["what is 1+1?", "2*3", "ten minus 3"], "answer": ["2", "6", "7"],
                             "meta": [None, '{"level": 3}', '{"level": 5, "note": "free"}']})
    judge = pd.DataFrame({"example_id": ["y", "z"], "score": [4.0, 2.0]})
    fs = build_features(probe, examples, judge=judge)
    f = fs.frame
    assert "pass_at_8" in fs.not_used  # k > n for every example: no value, said so
    assert f.loc["y", "judge_probe_score"] == 4 and f.loc["x", "judge_probe_score_missing"] == 1
    assert f.loc["y", "meta.level"] == 3 and f.loc["x", "meta.level_missing"] == 1
    assert list(f["dataset=d2"]) == [0, 1, 0]
    assert "grad_mean_sim" in fs.not_used and "probe_correct_length" in fs.not_used
    assert not f.isna().any().any()
    only = select_features(fs, ("pass1",))
    assert only.names and all(c.startswith("pass1") for c in only.names)
    with pytest.raises(CuratorError, match="no feature named"):
        select_features(fs, ("nope",))


def test_rare_labels_are_merged_or_left_out():
    y = pd.Series(["a"] * 20 + ["b"] * 6 + ["c"] * 5)
    merged, notes = merge_rare(y, 10)
    assert merged.value_counts().to_dict() == {"a": 20, "other": 11} and "merged" in notes[0]
    dropped, notes = merge_rare(pd.Series(["a"] * 20 + ["b"] * 3), 10)
    assert dropped.isna().sum() == 3 and "left out" in notes[0]


# -- training and evaluation --------------------------------------------------


def test_auroc_tracks_pass1_and_is_chance_for_a_random_label(ws):
    labels, correct = _synthetic(240)
    _labelled_workspace(ws, labels, correct)
    s = predict(ws, PredictConfig())
    by = {m.label: m for m in s.per_label}
    assert by["easy"].auroc > 0.85 and by["unlearnable"].auroc > 0.75
    assert 0.35 < by["unstable"].auroc < 0.65
    lo, hi = by["unstable"].ci
    assert lo < by["unstable"].auroc < hi
    assert s.n_cv == 240 and s.n_holdout == 0 and not s.warnings
    assert sum(sum(row.values()) for row in s.confusion.values()) == 240
    assert "pass1" in s.features


def test_too_few_labelled_examples_says_so(ws_path):
    from click.testing import CliRunner

    from curator.cli import cli

    labels, correct = _synthetic(20, seed=3, random_share=0)
    labels = {e: ("easy" if i < 10 else "unlearnable") for i, e in enumerate(sorted(labels))}
    with Workspace(ws_path) as w:
        _labelled_workspace(w, labels, correct)
        s = predict(w, PredictConfig(model="logreg"))
    assert s.warnings == ["too few labelled examples to trust (20); the AUROCs below have wide error"]
    assert all(m.ci is not None or m.auroc is None for m in s.per_label)
    r = CliRunner().invoke(cli, ["-w", str(ws_path), "-q", "predict", "--model", "logreg"])
    assert r.exit_code == 0, r.output
    assert "warning: too few labelled examples to trust (20)" in r.output
    assert "5-fold CV on 20 labelled examples" in r.output and "┏" not in r.output  # -q: summary lines only


def test_predictions_only_for_unlabelled_probed_examples_and_idempotent(ws):
    labels, correct = _synthetic(120, seed=1)
    unlabelled = [f"u{i}" for i in range(15)]
    rng = np.random.default_rng(5)
    correct |= {e: int(rng.integers(0, N + 1)) for e in unlabelled}
    _labelled_workspace(ws, labels, correct)
    ws.write("examples", _examples(["noprobe1", "noprobe2"], rng).assign(row_index=[900, 901]))
    config = PredictConfig(model="logreg")
    s = predict(ws, config)
    rows = ws.df("SELECT * FROM predictions WHERE prediction_set = ? ORDER BY example_id", [s.prediction_set])
    assert list(rows.example_id) == sorted(unlabelled) and s.n_predicted == 15
    for _, r in rows.iterrows():
        probs = json.loads(r.probabilities)
        assert set(probs) == set(s.classes) and sum(probs.values()) == pytest.approx(1)
        assert r.predicted_label == max(probs, key=probs.get)
    stored = ws.sql("SELECT label_set, probe_run, metrics FROM prediction_sets").fetchall()
    assert len(stored) == 1 and stored[0][:2] == ("ls-test", "probe")
    assert json.loads(stored[0][2])["per_label"][0]["label"] == s.classes[0]
    # the same config again: the same id, the rows rewritten, not added
    again = predict(ws, config)
    assert again.prediction_set == s.prediction_set
    assert ws.sql("SELECT count(*) FROM predictions").fetchone()[0] == 15
    assert ws.sql("SELECT count(*) FROM prediction_sets").fetchone()[0] == 1
    assert ws.df("SELECT * FROM predictions ORDER BY example_id").probabilities.tolist() == rows.probabilities.tolist()
    other = predict(ws, PredictConfig(model="logreg", seed=1))
    assert other.prediction_set != s.prediction_set
    assert ws.sql("SELECT count(*) FROM prediction_sets").fetchone()[0] == 2


def test_new_data_probed_later_is_predicted_from_that_probe(ws):
    """The user's flow: label a pool, then probe new data with the same eval settings and predict its labels."""
    labels, correct = _synthetic(120, seed=2)
    _labelled_workspace(ws, labels, correct)
    same = json.dumps({"eval": {"n": N, "temperature": 0.7, "seed": 0}})
    ws.execute("UPDATE runs SET config = ? WHERE run_id = 'probe'", [same])
    rng = np.random.default_rng(9)
    new = {f"n{i:02d}": int(rng.integers(0, N + 1)) for i in range(12)}
    hot = {f"h{i:02d}": int(rng.integers(0, N + 1)) for i in range(5)}
    ws.write("examples", _examples(sorted(new) + sorted(hot), rng).assign(dataset="new", row_index=range(17)))
    ws.write("runs", pd.DataFrame([_run("probe-new", "probe") | {"config": same},
                                   _run("probe-hot", "probe") | {"config": json.dumps(
                                       {"eval": {"n": N, "temperature": 1.0, "seed": 0}})}]))
    ws.write("evals", pd.concat([_evals("probe-new", 0, new), _evals("probe-hot", 0, hot)]))
    s = predict(ws, PredictConfig(model="logreg"))
    assert s.apply_runs == ["probe-new"]  # the T=1.0 probe is not comparable: its examples are not predicted
    rows = ws.df("SELECT example_id, predicted_label FROM predictions ORDER BY example_id")
    assert list(rows.example_id) == sorted(new)
    # the features of the new examples are their own probe's pass@1
    fs = load_features(ws, "probe", ("probe-new",))
    assert fs.frame.loc["n00", "pass1"] == pytest.approx(new["n00"] / N)
    assert fs.frame.loc[sorted(labels)[0], "pass1"] == pytest.approx(correct[sorted(labels)[0]] / N)


def test_missing_gradsim_and_judge_tables_are_handled(ws):
    labels, correct = _synthetic(80, seed=2)
    _labelled_workspace(ws, labels, correct)
    for table in ("gradsim", "gradient_configs", "judgments"):
        ws.execute(f"DROP TABLE {table}")
    s = predict(ws, PredictConfig(model="logreg", holdout=True))
    assert "no gradsim table" in s.not_used["grad_mean_sim"]
    assert "no judgments table" in s.not_used["judge_probe_score"]
    assert s.n_holdout == 20 and s.n_cv == 60
    assert all(m.holdout_n for m in s.per_label) and s.holdout_accuracy is not None


def test_no_label_set_is_an_actionable_error(ws):
    with pytest.raises(CuratorError, match="curator label"):
        predict(ws, PredictConfig())


# -- the two-seeds experiment -------------------------------------------------


def test_train_runs_learn_two_runs_labels_and_score_held_out_against_all_runs(ws):
    """Labels from runs r1, r2 via the label stage's query; held-out examples also scored against r1-r3 labels."""
    rng = np.random.default_rng(7)
    kinds = ["easy", "never", "learn", "unlearn", "mixed"]
    ids = [f"{k}{i:02d}" for k in kinds for i in range(16)]
    init, final, hist = {}, {r: {} for r in ("r1", "r2", "r3")}, []
    for e in ids:
        kind = e.rstrip("0123456789")
        init[e] = int(rng.integers(8, 32)) if kind == "easy" else int(rng.integers(0, 3))
        for r in final:
            hi = kind == "learn" or (kind == "mixed" and r == "r3")
            final[r][e] = int(rng.integers(10, 32)) if hi else 0
            hist.append({"run_id": r, "step": 1, "example_id": e, "n": 8,
                         "n_correct": 0 if kind == "never" else int(rng.integers(1, 4)),
                         "n_timeout": 0, "n_error": 0, "kept": True})
    ws.write("examples", _examples(ids, rng))
    ws.write("runs", pd.DataFrame([_run("probe", "probe")] + [_run(r, "train", 5, "probe", i)
                                                            for i, r in enumerate(final)]))
    ws.write("evals", pd.concat([_evals("probe", 0, init)] + [_evals(r, 5, c) for r, c in final.items()]))
    ws.write("history", pd.DataFrame(hist))
    full = label(ws, LabelConfig())  # the reference: all three runs
    s = predict(ws, PredictConfig(train_runs=("r1", "r2")))
    assert s.label_set == label_set_id(0.1, ["r1", "r2"]) and s.reference_label_set == full.label_set
    assert s.train_runs == ["r1", "r2"] and s.n_holdout == 20 and s.n_cv == 60
    by = {m.label: m for m in s.per_label}
    assert set(by) == {"easy", "learnable", "never_solved", "unlearnable"}  # "mixed" is unlearnable in r1, r2
    assert by["easy"].holdout_auroc == 1.0 and by["easy"].reference_auroc == 1.0
    assert by["unlearnable"].reference_n < by["unlearnable"].holdout_n  # r3 makes the mixed ones unstable
    assert s.reference_agreement < 1 and s.reference_macro_auroc is not None
    assert ws.sql("SELECT count(*) FROM label_sets").fetchone()[0] == 1  # the two-run labels are not stored


def test_help_imports_neither_sklearn_nor_torch():
    code = ("import sys\nfrom curator.cli import main\n"
            "try:\n    main(['predict', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('sklearn', 'torch', 'scipy') if m in sys.modules])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=curator_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout and "--train-runs" in r.stdout
