"""Ingest on real public data and on deliberately broken files."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import curator_env, shared_file
from curator.data.ingest import IngestConfig, ingest
from curator.errors import CuratorError, NothingUsable


def _rows(ws, sql, params=None):
    return ws.sql(sql, params).fetchall()


def test_math500_ingests_with_automatic_mapping_and_is_idempotent(ws):
    path = shared_file("math500.jsonl")
    s = ingest(ws, IngestConfig(source=str(path)))
    assert s.mapping["schema"] == "math"
    assert (s.mapping["prompt_field"], s.mapping["answer_field"]) == ("problem", "answer")
    assert s.n_rows == 500 and s.n_new == 500 and s.n_quarantined == 0
    first = json.loads(path.read_text().splitlines()[0])
    prompt, answer, solution, meta = _rows(
        ws, "SELECT prompt, answer, solution, meta FROM examples WHERE row_index = 0")[0]
    assert prompt == first["problem"].strip() and answer == first["answer"]
    assert solution == first["solution"] and json.loads(meta)["unique_id"] == first["unique_id"]

    before = _rows(ws, "SELECT * FROM examples ORDER BY example_id")
    again = ingest(ws, IngestConfig(source=str(path)))
    assert (again.n_new, again.n_already_present, again.n_quarantined) == (0, 500, 0)
    assert _rows(ws, "SELECT * FROM examples ORDER BY example_id") == before
    assert _rows(ws, "SELECT count(*) FROM datasets") == [(1,)]


def test_gsm8k_answers_come_from_after_the_hashes(ws):
    path = shared_file("gsm8k_test.jsonl")
    s = ingest(ws, IngestConfig(source=str(path)))
    assert s.mapping["schema"] == "gsm8k"
    assert s.n_new == 1319 and s.n_quarantined == 0
    first = json.loads(path.read_text().splitlines()[0])
    answer, solution = _rows(ws, "SELECT answer, solution FROM examples WHERE row_index = 0")[0]
    assert answer == "18" and solution == first["answer"]
    assert _rows(ws, "SELECT count(*) FROM examples WHERE answer LIKE '%#%' OR answer = ''") == [(0,)]


def _write_jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines))
    return path


def test_malformed_jsonl_keeps_the_valid_rows_and_quarantines_the_rest_with_reasons(ws, tmp_path):
    good = [json.dumps({"problem": f"What is {i}+{i}?", "answer": str(2 * i)}).encode() for i in range(5)]
    bad = {
        5: json.dumps({"problem": "No answer here"}).encode(),
        6: json.dumps({"problem": 12345, "answer": "1"}).encode(),
        7: json.dumps({"problem": "   ", "answer": "1"}).encode(),
        8: b'{"problem": "caf\xe9 au lait?", "answer": "2"}',
        9: json.dumps({"problem": "x" * 1_000_000, "answer": "3"}).encode(),
        10: b'["a", "list"]',
        11: good[0],  # exact copy of row 0
        12: json.dumps({"problem": "What is 9 + 9?", "answer": "18"}).encode(),
        13: json.dumps({"problem": "What is 9 + 9?", "answer": "19"}).encode(),
        14: json.dumps({"problem": "Compute it.", "answer": "}{"}).encode(),
        15: b'{"problem": "truncated", "answ',
    }
    path = _write_jsonl(tmp_path / "broken.jsonl", good + [bad[i] for i in sorted(bad)])
    s = ingest(ws, IngestConfig(source=str(path)))
    assert s.n_rows == 16 and s.n_new == 5
    reasons = dict(_rows(ws, "SELECT row_index, reason FROM quarantine ORDER BY row_index"))
    assert sorted(reasons) == sorted(bad)
    expect = {
        5: "missing field", 6: "wrong type", 7: "empty prompt", 8: "not valid UTF-8",
        9: "prompt too long", 10: "not an object", 11: "duplicate: same prompt and answer as row 0",
        12: "conflicting answers", 13: "conflicting answers", 14: "unparseable answer",
        15: "truncated",
    }
    for row, needle in expect.items():
        assert needle in reasons[row], (row, reasons[row])
    raw9 = _rows(ws, "SELECT raw FROM quarantine WHERE row_index = 9")[0][0]
    assert len(raw9) < 70_000 and "cut" in raw9
    assert s.n_new + s.n_quarantined == s.n_rows


def test_cli_summarizes_and_exits_zero_or_two(tmp_path):
    ws = tmp_path / "w.duckdb"
    ok = _write_jsonl(tmp_path / "ok.jsonl", [
        json.dumps({"question": "1+1?", "answer": "2"}).encode(), b"not json"])
    r = subprocess.run([sys.executable, "-m", "curator.cli", "-w", str(ws), "ingest", str(ok)],
                       capture_output=True, text=True, env=curator_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 new" in r.stdout and "1 quarantined" in r.stdout
    empty = _write_jsonl(tmp_path / "empty_prompts.jsonl", [
        json.dumps({"question": "", "answer": "2"}).encode(),
        json.dumps({"question": " ", "answer": "3"}).encode()])
    r = subprocess.run([sys.executable, "-m", "curator.cli", "-w", str(ws), "ingest", str(empty)],
                       capture_output=True, text=True, env=curator_env(), timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no usable row" in r.stderr and "empty prompt" in r.stderr


def test_nothing_readable_is_a_clear_error(ws, tmp_path):
    path = _write_jsonl(tmp_path / "junk.jsonl", [b"\xff\xfe", b"{{{"])
    with pytest.raises(NothingUsable, match="could be read"):
        ingest(ws, IngestConfig(source=str(path)))


def test_unknown_fields_ask_for_an_explicit_mapping(ws, tmp_path):
    path = _write_jsonl(tmp_path / "odd.jsonl", [json.dumps({"q": "1+1", "a": "2"}).encode()])
    with pytest.raises(CuratorError, match="--prompt-field"):
        ingest(ws, IngestConfig(source=str(path)))
    s = ingest(ws, IngestConfig(source=str(path), prompt_field="q", answer_field="a"))
    assert s.mapping["schema"] == "explicit" and s.n_new == 1


def test_verl_parquet_schema(ws, tmp_path):
    rows = [{
        "data_source": "openai/gsm8k",
        "prompt": [{"role": "system", "content": "Think."}, {"role": "user", "content": f"What is {i}*3?"}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": str(3 * i)},
        "extra_info": {"split": "train", "index": i},
    } for i in range(4)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    s = ingest(ws, IngestConfig(source=str(tmp_path / "train.parquet"), id_field="extra_info.index"))
    assert s.mapping["schema"] == "verl" and s.n_new == 4
    got = _rows(ws, "SELECT example_id, prompt, answer FROM examples ORDER BY row_index")
    assert got[2] == ("2", "What is 2*3?", "6")


def test_trl_conversational_prompt_with_solution_column(ws, tmp_path):
    rows = [{"prompt": [{"role": "user", "content": "Find x if 2x=4."}], "solution": "So $x=\\boxed{2}$."}]
    path = _write_jsonl(tmp_path / "trl.jsonl", [json.dumps(r).encode() for r in rows])
    s = ingest(ws, IngestConfig(source=str(path)))
    assert s.mapping["schema"] == "trl" and s.n_new == 1
    assert _rows(ws, "SELECT prompt, answer FROM examples") == [("Find x if 2x=4.", "2")]


def test_csv_with_bad_bytes_and_a_folder_source(ws, tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.csv").write_bytes(b"question,answer\nWhat is 2+2?,4\n\"Caf\xe9?\",5\n")
    (folder / "b.jsonl").write_text(json.dumps({"question": "What is 3+3?", "answer": "6"}) + "\n")
    s = ingest(ws, IngestConfig(source=str(folder)))
    assert s.n_rows == 3 and s.n_new == 2 and s.n_quarantined == 1
    assert "not valid UTF-8" in _rows(ws, "SELECT reason FROM quarantine")[0][0]


def test_user_ids_must_be_unique(ws, tmp_path):
    rows = [{"id": "a", "question": "1+1?", "answer": "2"}, {"id": "a", "question": "2+2?", "answer": "4"},
            {"id": "b", "question": "3+3?", "answer": "6"}]
    path = _write_jsonl(tmp_path / "ids.jsonl", [json.dumps(r).encode() for r in rows])
    s = ingest(ws, IngestConfig(source=str(path), id_field="id"))
    assert s.n_new == 1
    assert all("id not unique" in r for (r,) in _rows(ws, "SELECT reason FROM quarantine"))


def test_ids_do_not_depend_on_row_order(tmp_path):
    from curator.store import Workspace

    rows = [json.dumps({"problem": f"p{i} = ?", "answer": str(i)}).encode() for i in range(50)]
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    ids = []
    for n, lines in enumerate((rows, shuffled)):
        path = _write_jsonl(tmp_path / f"d{n}.jsonl", lines)
        with Workspace(tmp_path / f"w{n}.duckdb") as w:
            ingest(w, IngestConfig(source=str(path), name="d"))
            ids.append(sorted(r[0] for r in w.sql("SELECT example_id FROM examples").fetchall()))
    assert ids[0] == ids[1]


def test_same_example_from_another_dataset_is_reported_as_duplicate(ws, tmp_path):
    line = json.dumps({"problem": "What is 2+5?", "answer": "7"}).encode()
    p1 = _write_jsonl(tmp_path / "one.jsonl", [line])
    p2 = _write_jsonl(tmp_path / "two.jsonl", [line])
    ingest(ws, IngestConfig(source=str(p1)))
    s = ingest(ws, IngestConfig(source=str(p2)))
    assert s.n_new == 0 and s.n_quarantined == 1
    assert "already in the workspace from dataset 'one'" in _rows(ws, "SELECT reason FROM quarantine")[0][0]


def test_hub_source_offline_is_a_clear_error(ws):
    with pytest.raises(CuratorError, match="could not load Hub dataset"):
        ingest(ws, IngestConfig(source="no-such-org/no-such-dataset-xyz"))


def test_missing_local_file_is_a_clear_error(ws):
    with pytest.raises(CuratorError, match="no such file"):
        ingest(ws, IngestConfig(source="./nope/data.jsonl"))
