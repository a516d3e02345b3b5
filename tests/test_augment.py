"""Augmentation: lab template variants, and LLM problems kept only when an independent solve agrees."""

from __future__ import annotations

import json

import pandas as pd

from chat_server import ChatServer, Reply, completion
from curator.export.augment import AugmentConfig, augment


def _labelled_lab(ws, tmp_path):
    from curator.data.ingest import IngestConfig, ingest
    from curator.pipeline import LAB_DATA
    from curator.store import utcnow

    sub = tmp_path / "lab.jsonl"
    sub.write_text("".join((LAB_DATA / "train.jsonl").read_text().splitlines(True)[:6]))
    ingest(ws, IngestConfig(source=str(sub), name="lab"))
    ids = [r[0] for r in ws.sql("SELECT example_id FROM examples ORDER BY row_index").fetchall()]
    ws.write("label_sets", pd.DataFrame([{"label_set": "ls", "tau": 0.1, "run_ids": "[]", "config": "{}",
                                          "created_at": utcnow()}]))
    ws.write("labels", pd.DataFrame({"label_set": "ls", "example_id": ids,
                                     "label": ["unlearnable", "easy", "learnable", "easy", "easy", "easy"]}))
    return ids


def test_lab_variants_keep_the_bucket_and_carry_provenance(ws, tmp_path):
    ids = _labelled_lab(ws, tmp_path)
    s = augment(ws, AugmentConfig(per_example=3, out=str(tmp_path / "aug"), name="lab-aug"))
    assert s.parents == 2 and s.kept == 6 and s.ingest.n_new == 6
    rows = ws.df("SELECT e.prompt, e.answer, e.solution, e.meta FROM examples e WHERE dataset = 'lab-aug'")
    parents = dict(ws.sql("SELECT example_id, meta FROM examples WHERE dataset = 'lab'").fetchall())
    for r in rows.itertuples():
        meta = json.loads(r.meta)
        assert meta["parent_id"] in (ids[0], ids[2]) and meta["method"] == "lab-variants"
        assert meta["bucket"] == json.loads(parents[meta["parent_id"]])["bucket"]
        assert int(r.answer) == eval(r.prompt.rstrip("="))  # noqa: S307 - lab arithmetic only


def test_llm_similar_keeps_only_problems_the_solver_agrees_with(ws, tmp_path, monkeypatch):
    _labelled_lab(ws, tmp_path)
    monkeypatch.setenv("AUG_KEY", "sk-aug-secret-000000000000000000")

    def script(n, body, headers):
        text = body["messages"][0]["content"]
        if text.startswith("Write"):
            return Reply(body=completion(json.dumps([{"problem": "What is 6*7?", "answer": "42"},
                                                     {"problem": "What is 5+5?", "answer": "11"}])))
        if "6*7" in text:
            return Reply(body=completion("6*7 = 42, so \\boxed{42}"))
        return Reply(body=completion("5+5 = \\boxed{10}"))

    with ChatServer(script) as server:
        s = augment(ws, AugmentConfig(method="llm-similar", per_example=2, labels=["learnable"],
                                      base_url=server.url, model="gen", api_key_env="AUG_KEY",
                                      out=str(tmp_path / "aug"), name="llm-aug"))
    assert (s.kept, s.rejected["solver disagrees"]) == (1, 1)
    row = ws.df("SELECT prompt, answer, meta FROM examples WHERE dataset = 'llm-aug'").iloc[0]
    meta = json.loads(row.meta)
    assert row.prompt == "What is 6*7?" and meta["generator"] == "gen" and meta["method"] == "llm-similar"
