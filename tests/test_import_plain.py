"""Plain outcome logs (jsonl, parquet) -> history, with the fields found by name, and `curator import`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import curator_env
from curator.errors import CuratorError
from curator.importers.plain import read_plain, resolve_prompts
from curator.importers.records import import_records
from curator.store import Workspace, utcnow


def prompt(i: int) -> str:
    return f"A train leaves at {i} o'clock and travels for {i + 2} hours. When does it arrive?"


def seed_examples(ws, n: int = 5) -> None:
    ws.write("examples", pd.DataFrame({
        "example_id": [f"ex{i}" for i in range(n)], "dataset": "trains", "row_index": list(range(n)),
        "prompt": [prompt(i) for i in range(n)], "answer": [str(2 * i + 2) for i in range(n)],
        "solution": None, "meta": "{}", "ingested_at": utcnow()}))


def cli(ws_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curator.cli", "-w", str(ws_path), *args],
                          capture_output=True, text=True, env=curator_env(), timeout=120)


def test_jsonl_with_global_step_ids_and_acc_is_detected(ws, tmp_path):
    seed_examples(ws)
    log = tmp_path / "log.jsonl"
    rows = [{"global_step": s, "example_id": f"ex{i}", "acc": (s + i + k) % 3 == 0, "score": 0.5,
             "response": "r" * (10 + k), "completion_tokens": 10 + k}
            for s in range(3) for i in range(4) for k in range(2)]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n" + '{"global_step": "x", "example_id": "ex1"}\n'
                   + "not json\n")
    records, warnings = read_plain(log)
    m = records.attrs["mapping"]
    assert (m["step"], m["example_id"], m["correct"], m["reward"], m["completion"], m["length"]) == (
        "global_step", "example_id", "acc", "score", "response", "completion_tokens")
    assert len(records) == 24 and len(warnings) == 1
    assert warnings[0].startswith("2 bad rows skipped: log.jsonl:25: no integer step")
    assert "log.jsonl:26: not valid JSON" in warnings[0]
    s = import_records(ws, records, importer="plain", source=str(log), fingerprint=str(log))
    hist = ws.df("SELECT * FROM history WHERE run_id = ? ORDER BY step, example_id", [s.run_id])
    assert len(hist) == 12 and (hist.n == 2).all()
    assert hist.n_correct.sum() == sum(r["acc"] for r in rows)
    assert hist.mean_length.tolist() == [10.5] * 12


def test_parquet_with_templated_prompts_and_rewards_only(ws, tmp_path):
    seed_examples(ws)
    path = tmp_path / "outcomes.parquet"
    pd.DataFrame({
        "step": [1, 1, 1, 2],
        "query": [f"<|im_start|>user\n{prompt(i)}<|im_end|>\n<|im_start|>assistant\n" for i in (0, 0, 1, 4)],
        "reward": [1.0, 0.0, 0.7, 0.2],
    }).to_parquet(path)
    records, warnings = read_plain(path, threshold=0.6)
    assert records.attrs["mapping"]["prompt"] == "query" and records.attrs["mapping"]["correct"] == "reward > 0.6"
    assert records.correct.tolist() == [True, False, True, False] and warnings == []
    records, warnings = resolve_prompts(records, ws.df("SELECT example_id, prompt FROM examples"))
    assert records.example_id.tolist() == ["ex0", "ex0", "ex1", "ex4"]


def test_missing_step_or_reward_names_the_file_and_the_fields(tmp_path):
    path = tmp_path / "nostep.jsonl"
    path.write_text(json.dumps({"example_id": "ex0", "reward": 1.0, "when": 3}) + "\n")
    with pytest.raises(CuratorError, match=r"nostep.jsonl: no step field .*fields present: example_id, reward, when"):
        read_plain(path)
    path.write_text(json.dumps({"example_id": "ex0", "step": 1, "verdict": "yes"}) + "\n")
    with pytest.raises(CuratorError, match=r"no reward or correct field .*fields present: example_id, step, verdict"):
        read_plain(path)
    records, _ = read_plain(path, correct_field="verdict")
    assert records.correct.tolist() == [True]
    with pytest.raises(CuratorError, match=r"--step-field 'iter' is in none"):
        read_plain(path, step_field="iter")


def test_cli_imports_a_folder_and_reimport_replaces(ws_path, tmp_path):
    with Workspace(ws_path) as w:
        seed_examples(w)
    logs = tmp_path / "logs"
    logs.mkdir()
    for part in range(2):
        (logs / f"part{part}.jsonl").write_text("\n".join(json.dumps(
            {"step": part, "id": f"ex{i}", "correct": i % 2 == 0, "reward": float(i % 2 == 0)})
            for i in range(5)) + "\n")
    (logs / "part1.jsonl").write_text((logs / "part1.jsonl").read_text()
                                      + json.dumps({"step": 1, "id": "nope", "correct": True}) + "\n")
    first = cli(ws_path, "import", str(logs), "--format", "plain", "--model", "my-model")
    assert first.returncode == 0, first.stderr
    assert "step <- step, example_id <- id, prompt" not in first.stdout  # no prompt field in these logs
    assert "step <- step, example_id <- id, correct <- correct, reward <- reward" in first.stdout
    assert "warning: 1 of 11 records match no example" in first.stdout
    assert "unmatched, e.g.: 'nope'" in first.stdout
    assert "new run): 11 records, 10 matched, 10 history rows over 2 steps and 5 examples, 1 unmatched" \
        in first.stdout
    second = cli(ws_path, "import", str(logs), "--format", "plain")
    assert second.returncode == 0 and "replaced the earlier import of this source" in second.stdout
    with Workspace(ws_path, read_only=True) as w:
        assert w.sql("SELECT count(*), count(DISTINCT run_id) FROM history").fetchone() == (10, 1)
        kind, backend, model, config = w.sql("SELECT kind, backend, model, config FROM runs").fetchone()
    assert (kind, backend, model) == ("import", "plain", None)  # the second import replaced the run
    assert json.loads(config)["mapping"]["example_id"] == "id"


def test_cli_missing_field_exits_2_naming_file_and_fields(ws_path, tmp_path):
    with Workspace(ws_path) as w:
        seed_examples(w)
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "ex0", "epoch": 1, "ok": True}) + "\n")
    r = cli(ws_path, "import", str(path), "--format", "plain")
    assert r.returncode == 2
    assert "bad.jsonl: no step field" in r.stderr and "fields present: epoch, id, ok" in r.stderr
    r = cli(ws_path, "import", str(path), "--format", "plain", "--step-field", "epoch", "--correct-field", "ok")
    assert r.returncode == 0, r.stderr
    assert "1 records, 1 matched, 1 history rows" in r.stdout
    r = cli(ws_path, "import", str(path), "--format", "verl", "--id-field", "id")
    assert r.returncode == 2 and "--id-field applies to --format plain; for verl, name the id with --index-key" \
        in r.stderr


def test_an_import_linked_to_two_probes_is_labelled_like_a_train_run(ws_path, tmp_path):
    """Another trainer's run + probes of its initial and final models -> `curator label` labels it."""
    with Workspace(ws_path) as ws:
        seed_examples(ws, 5)
        probe = lambda run_id: {"run_id": run_id, "kind": "probe", "model": run_id, "backend": "openai",
                                "config": "{}", "status": "finished", "started_at": utcnow(), "last_step": 0}
        ws.write("runs", pd.DataFrame([probe("p-init"), probe("p-final")]))
        init = [20, 1, 1, 0, 1]   # of 32: ex0 easy; ex1..ex4 hard at first
        final = [30, 20, 0, 0, 2]  # ex1 learnt; ex2, ex4 not; ex3 never solved in training
        ws.write("evals", pd.DataFrame(
            [{"run_id": r, "step": 0, "example_id": f"ex{i}", "n": 32, "n_correct": c, "n_timeout": 0,
              "n_error": 0, "temperature": 0.7} for r, cs in (("p-init", init), ("p-final", final))
             for i, c in enumerate(cs)]))
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "example_id": f"ex{i}", "correct": i != 3 and (s + k) % 4 == 0})
                           + "\n" for s in (1, 2, 3, 4) for i in range(5) for k in range(4)))
    r = cli(ws_path, "label")
    assert r.returncode == 2 and "--initial-probe" in r.stderr  # nothing to label yet, and it says how
    r = cli(ws_path, "import", str(log), "--format", "plain", "--initial-probe", "p-init")
    assert r.returncode == 2 and "go together" in r.stderr
    r = cli(ws_path, "import", str(log), "--format", "plain", "--initial-probe", "p-final", "--final-probe", "nope")
    assert r.returncode == 2 and "nope" in r.stderr and "not a finished probe run" in r.stderr
    r = cli(ws_path, "import", str(log), "--format", "plain", "--initial-probe", "p-init", "--final-probe", "p-final")
    assert r.returncode == 0, r.stderr
    r = cli(ws_path, "label")
    assert r.returncode == 0, r.stderr
    with Workspace(ws_path, read_only=True) as ws:
        run_id, initial, steps = ws.sql("SELECT run_id, initial_run, steps FROM runs WHERE kind = 'import'").fetchone()
        assert initial == "p-init" and steps == 4
        assert ws.sql("SELECT count(*) FROM evals WHERE run_id = ? AND step = 4", [run_id]).fetchone()[0] == 5
        got = dict(ws.sql("SELECT example_id, label FROM labels").fetchall())
        assert got == {"ex0": "easy", "ex1": "learnable", "ex2": "unlearnable", "ex3": "never_solved",
                       "ex4": "unlearnable"}
    # importing again replaces the run, its evals included
    r = cli(ws_path, "import", str(log), "--format", "plain", "--initial-probe", "p-init", "--final-probe", "p-final")
    assert r.returncode == 0, r.stderr
    with Workspace(ws_path, read_only=True) as ws:
        assert ws.sql("SELECT count(*) FROM evals WHERE run_id = ?", [run_id]).fetchone()[0] == 5
