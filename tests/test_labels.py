"""Labels and scores against straightforward re-implementations on hand-made histories."""

from __future__ import annotations

import json
import random
from statistics import mean, pstdev

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curator.analysis.labels import LabelConfig, label
from curator.analysis.scores import cartography, historical_std, limr, pass_at_k, slope
from curator.store import Workspace, utcnow

RUNS = ["r1", "r2", "r3"]


def _make(ws: Workspace, examples: dict[str, dict], steps: int = 4, shuffle_seed: int | None = None) -> None:
    """examples: id -> {"init": c0, "final": [c per run], "train": [[(step, n_correct)] per run]} (n = 8 everywhere)."""
    runs = [{"run_id": "init", "kind": "probe", "config": "{}", "status": "finished", "started_at": utcnow(),
             "steps": 0, "initial_run": None}]
    runs += [{"run_id": r, "kind": "train", "config": "{}", "status": "finished", "started_at": utcnow(),
              "steps": steps, "initial_run": "init"} for r in RUNS]
    evals, history = [], []
    for e, spec in examples.items():
        evals.append({"run_id": "init", "step": 0, "example_id": e, "n": 8, "n_correct": spec["init"]})
        for r, c in zip(RUNS, spec["final"]):
            evals.append({"run_id": r, "step": steps, "example_id": e, "n": 8, "n_correct": c})
        for r, draws in zip(RUNS, spec["train"]):
            history += [{"run_id": r, "step": s, "example_id": e, "n": 8, "n_correct": c, "kept": 0 < c < 8}
                        for s, c in draws]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(evals)
        random.Random(shuffle_seed).shuffle(history)
    zero = {"n_timeout": 0, "n_error": 0}
    ws.write("runs", pd.DataFrame(runs))
    ws.write("evals", pd.DataFrame(evals).assign(temperature=0.7, **zero))
    ws.write("history", pd.DataFrame(history).assign(**zero))


HAND = {
    "easy": {"init": 2, "final": [0, 0, 0], "train": [[(1, 0)], [], []]},  # 2/8 > 0.1 wins over anything
    "never": {"init": 0, "final": [1, 2, 3], "train": [[(1, 0), (3, 0)], [(2, 0)], []]},  # no train reward
    "learn": {"init": 0, "final": [2, 3, 8], "train": [[(1, 1)], [(2, 0)], [(4, 2)]]},
    "unlearn": {"init": 0, "final": [0, 0, 0], "train": [[(1, 1)], [], []]},
    "boundary": {"init": 0, "final": [0, 1, 0], "train": [[(2, 3)], [], []]},  # 1/8 = 0.125 > 0.1: disagree
    "exactly_tau": {"init": 0, "final": [0, 0, 0], "train": [[(1, 1)], [], []]},
    "unstable": {"init": 0, "final": [4, 0, 4], "train": [[(1, 2)], [(1, 1)], []]},
}


def _labels(ws) -> dict[str, str]:
    return dict(ws.sql("SELECT example_id, label FROM labels").fetchall())


def test_hand_made_labels_follow_the_definitions(ws):
    _make(ws, HAND)
    s = label(ws, LabelConfig(tau=0.1))
    got = _labels(ws)
    assert got == {"easy": "easy", "never": "never_solved", "learn": "learnable", "unlearn": "unlearnable",
                   "boundary": "unstable", "exactly_tau": "unlearnable", "unstable": "unstable"}
    assert s.counts == {"easy": 1, "learnable": 1, "unlearnable": 2, "never_solved": 1, "unstable": 2}
    row = ws.sql("SELECT initial_pass1, final_pass1_min, final_pass1_max, train_correct FROM labels "
                 "WHERE example_id = 'learn'").fetchone()
    assert row == (0.0, 2 / 8, 1.0, 3)
    ls = ws.sql("SELECT tau, run_ids FROM label_sets").fetchone()
    assert ls[0] == 0.1 and json.loads(ls[1]) == RUNS


def test_intersection_over_a_chosen_subset_of_runs(ws):
    _make(ws, HAND)
    label(ws, LabelConfig(tau=0.1, runs=("r1", "r3")))
    got = _labels(ws)
    assert got["boundary"] == "unlearnable"  # r2, the disagreeing run, is not chosen
    assert got["unstable"] == "learnable" and got["learn"] == "learnable"  # 4/8 in r1 and r3


def test_tau_is_an_option(ws):
    _make(ws, HAND)
    label(ws, LabelConfig(tau=0.3))
    got = _labels(ws)
    assert got["easy"] == "never_solved"  # 0.25 <= 0.3: hard now, and no train reward was seen
    assert got["learn"] == "unstable" and got["boundary"] == "unlearnable"  # 0.25 <= 0.3 < 0.375; 0.125 <= 0.3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=st.dictionaries(
    st.text("abcdef", min_size=1, max_size=4),
    st.fixed_dictionaries({
        "init": st.integers(0, 8),
        "final": st.lists(st.integers(0, 8), min_size=3, max_size=3),
        "train": st.lists(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 8)), max_size=3, unique_by=lambda t: t[0]),
                          min_size=3, max_size=3),
    }), min_size=1, max_size=12), seed=st.integers(0, 1000))
def test_labels_do_not_depend_on_row_order_and_are_idempotent(tmp_path_factory, spec, seed):
    out = []
    for shuffle in (None, seed):
        path = tmp_path_factory.mktemp("w") / "w.duckdb"
        with Workspace(path) as w:
            _make(w, spec, shuffle_seed=shuffle)
            label(w, LabelConfig())
            first = sorted(w.sql("SELECT * FROM labels").fetchall())
            label(w, LabelConfig())  # again: same rows, no duplicates
            assert sorted(w.sql("SELECT * FROM labels").fetchall()) == first
            out.append(first)
    assert out[0] == out[1]
    # and the label matches the definition computed directly in Python
    for e, s in spec.items():
        p0 = s["init"] / 8
        finals = [c / 8 for c in s["final"]]
        solved = sum(c for draws in s["train"] for _, c in draws) > 0
        expect = ("easy" if p0 > 0.1 else "never_solved" if not solved else "learnable" if min(finals) > 0.1
                  else "unlearnable" if max(finals) <= 0.1 else "unstable")
        assert dict((r[1], r[2]) for r in out[0])[e] == expect


def _hist(rows):
    return pd.DataFrame(rows, columns=["run_id", "step", "example_id", "n", "n_correct"])


def test_limr_matches_the_formula():
    rows = [("r", 1, "a", 4, 0), ("r", 1, "b", 4, 4), ("r", 5, "a", 4, 2), ("r", 5, "b", 4, 4),
            ("r", 9, "a", 4, 4), ("q", 2, "a", 4, 1)]
    got = limr(_hist(rows))
    # run r: epochs by draw order; base_e = mean accuracy of the examples at their e-th draw
    base = [mean([0, 1]), mean([0.5, 1]), mean([1])]
    a_r = 1 - sum((x - b) ** 2 for x, b in zip([0, 0.5, 1], base)) / sum((1 - b) ** 2 for b in base)
    a_q = 1 - (0.25 - 0.25) ** 2 / (1 - 0.25) ** 2
    assert got["a"] == pytest.approx((a_r + a_q) / 2)
    assert got["b"] == pytest.approx(0.0)  # always at 1 while the base is 0.5, then 0.75


def test_historical_std_cartography_and_slope_match_direct_computation():
    rows = [("r", 1, "a", 8, 0), ("r", 3, "a", 8, 4), ("r", 6, "a", 8, 8), ("q", 2, "a", 8, 2), ("q", 4, "a", 8, 2)]
    h = _hist(rows)
    assert historical_std(h)["a"] == pytest.approx((pstdev([0, 0.5, 1]) + pstdev([0.25, 0.25])) / 2)
    c = cartography(h).loc["a"]
    accs = [0, 0.5, 1, 0.25, 0.25]
    assert c.confidence == pytest.approx(mean(accs)) and c.variability == pytest.approx(pstdev(accs))
    xs, ys = [1, 3, 6], [0, 0.5, 1]
    mx, my = mean(xs), mean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    assert slope(h)["a"] == pytest.approx((b + 0.0) / 2)


def test_scores_are_written_beside_labels(ws):
    _make(ws, HAND)
    label(ws, LabelConfig(k=(1, 4)))
    row = ws.df("SELECT * FROM scores WHERE example_id = 'learn'").iloc[0]
    assert row.initial_pass1 == 0 and row.final_pass1_mean == pytest.approx((2 + 3 + 8) / 24)
    fk = json.loads(row.final_pass_at_k)
    assert fk["4"] == pytest.approx(mean([pass_at_k(8, c, 4) for c in (2, 3, 8)]))
    assert json.loads(row.final_pass1_by_run) == {"r1": 0.25, "r2": 0.375, "r3": 1.0}
    assert row.train_draws == 3 and row.train_correct == 3
    assert row.learnability == 0
