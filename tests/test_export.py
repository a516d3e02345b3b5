"""Export: every format loads back with `datasets` in order; dropped + kept = input, reason by reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import datasets
import pandas as pd
import pytest

from conftest import curator_env
from curator.analysis.labels import LabelConfig, label
from curator.export.select import mirrored_j
from curator.export.stage import ExportConfig, export
from curator.store import utcnow
from test_labels import HAND, _make


@pytest.fixture
def labelled(ws):
    ids = list(HAND)
    ws.write("examples", pd.DataFrame({
        "example_id": ids, "dataset": "toy", "row_index": range(len(ids)),
        "prompt": [f"What is {i}+{i}? <script>alert(1)</script>" for i in range(len(ids))],
        "answer": [str(2 * i) for i in range(len(ids))], "ingested_at": utcnow()}))
    ws.write("datasets", pd.DataFrame([{"dataset": "toy", "source": "toy.jsonl", "mapping": "{}", "n_rows": 7,
                                        "n_kept": 7, "n_quarantined": 0, "first_ingested_at": utcnow(),
                                        "last_ingested_at": utcnow()}]))
    _make(ws, HAND)
    label(ws, LabelConfig())
    return ws


def _load(path, fmt):
    if fmt == "hf":
        return datasets.load_from_disk(str(path))["train"]
    kind = "parquet" if str(path).endswith(".parquet") else "json"
    return datasets.load_dataset(kind, data_files=str(path), split="train")


@pytest.mark.parametrize("how", ["original", "pass", "staged", "mirrored-j", "learnability"])
def test_every_format_round_trips_in_order(labelled, tmp_path, how):
    s = export(labelled, ExportConfig(out=str(tmp_path / "x"), drop=["never_solved"], order=how))
    expected = None
    for path in s.files:
        if path.endswith("README.md"):
            continue
        fmt = "hf" if path.endswith("hf") else "other"
        ds = _load(path, fmt)
        if "verl" in path:
            ids = [x["example_id"] for x in ds["extra_info"]]
            assert ds[0]["prompt"][0]["role"] == "user" and ds[0]["reward_model"]["style"] == "rule"
            assert [x["index"] for x in ds["extra_info"]] == list(range(len(ds)))
        else:
            ids = ds["example_id"]
        if "trl" in path:
            assert ds[0]["prompt"][0]["content"].startswith("What is")
        expected = expected or ids
        assert ids == expected and len(ids) == s.n_kept
    assert "never" not in expected


def test_dropped_plus_kept_is_the_input_reason_by_reason(labelled, tmp_path):
    s = export(labelled, ExportConfig(out=str(tmp_path / "x"), drop=["unlearnable"], pass_band=(0.0, 0.2),
                                      where="example_id <> 'learn'", formats=["jsonl"]))
    assert s.n_in == 7 and s.n_kept + sum(s.drops.values()) == 7
    rows = labelled.sql("SELECT example_id, reason FROM export_drops WHERE export_id = ?", [s.export_id]).fetchall()
    assert Counter(r for _, r in rows) == s.drops
    by_id = dict(rows)
    assert "label unlearnable" in by_id["unlearn"] and "fails --where" in by_id["learn"]
    assert by_id["easy"] == "initial pass@1 above 0.2 (--pass-band 0.0:0.2)"
    row = labelled.sql("SELECT n_in, n_kept, n_dropped FROM exports WHERE export_id = ?", [s.export_id]).fetchone()
    assert row == (7, s.n_kept, 7 - s.n_kept)


def test_keep_labels_and_bare(labelled, tmp_path):
    s = export(labelled, ExportConfig(out=str(tmp_path / "x"), keep=["learnable", "easy"], bare=True,
                                      formats=["parquet"]))
    df = pd.read_parquet(tmp_path / "x" / "parquet" / "train.parquet")
    assert sorted(df.example_id) == ["easy", "learn"] and "label" not in df.columns
    assert s.drops and all("not in --keep" in r for r in s.drops)


def test_bad_where_and_empty_result_are_clear_errors(labelled, tmp_path):
    from curator.errors import CuratorError

    with pytest.raises(CuratorError, match="not a valid predicate"):
        export(labelled, ExportConfig(out=str(tmp_path / "x"), where="no_such_column > 1"))
    with pytest.raises(CuratorError, match="loosen the filters"):
        export(labelled, ExportConfig(out=str(tmp_path / "y"), keep=["nothing"]))


def test_mirrored_j_is_mostly_reachable_with_some_easy():
    frame = pd.DataFrame({"example_id": [f"e{i:03d}" for i in range(100)],
                          "initial_pass1": [0.05] * 60 + [0.5] * 10 + [0.9] * 20 + [0.0] * 10})
    out = mirrored_j(frame, seed=1)
    assert sorted(out.example_id) == sorted(frame.example_id)
    first = out.initial_pass1.iloc[:10].tolist()
    assert first.count(0.05) == 7 and first.count(0.5) == 1 and first.count(0.9) == 2
    assert (out.initial_pass1.iloc[-10:] == 0).all()
    assert out.example_id.tolist() == mirrored_j(frame, seed=1).example_id.tolist()


def test_card_says_how_the_data_was_curated(labelled, tmp_path):
    export(labelled, ExportConfig(out=str(tmp_path / "x"), drop=["unlearnable"], order="staged", formats=["jsonl"],
                                  license="mit"))
    card = (tmp_path / "x" / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n")
    for needle in ("toy.jsonl", "tau = 0.1", "| unlearnable |", "--drop unlearnable", "`staged` order",
                   "curator 0.1.0", "seed", "size_categories"):
        assert needle in card, needle


def test_dry_run_writes_the_hub_folder_and_sends_nothing(tmp_path):
    from test_train_resume import _prepare

    ws = _prepare(tmp_path, "w")
    env = curator_env() | {"HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_SECRETSECRETSECRETSECRET123"}
    r = subprocess.run([sys.executable, "-m", "curator.cli", "-w", str(ws), "export", "--out", str(tmp_path / "x"),
                        "--push-to-hub", "org/name", "--dry-run", "--format", "parquet"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    files = sorted(p.relative_to(tmp_path / "x" / "hub").as_posix() for p in (tmp_path / "x" / "hub").rglob("*")
                   if p.is_file())
    assert files == ["README.md", "data/train-00000-of-00001.parquet"]
    back = datasets.load_dataset("parquet", data_dir=str(tmp_path / "x" / "hub" / "data"), split="train")
    assert len(back) == 40
    written = [p for p in (tmp_path / "x").rglob("*") if p.is_file()] + [ws]  # every file, and the workspace
    assert ws.exists() and not (tmp_path / "w.duckdb.wal").exists()  # checkpointed: the file holds everything
    blobs = [r.stdout.encode(), r.stderr.encode()] + [p.read_bytes() for p in written]
    assert not any(b"hf_SECRET" in b for b in blobs)


class _FakeHub:
    """An HfApi stand-in that records every call and keeps the uploaded files."""

    def __init__(self, existing_private=None):
        self.calls, self.existing_private, self.files = [], existing_private, {}

    def repo_info(self, repo_id, repo_type):
        from huggingface_hub.errors import RepositoryNotFoundError

        self.calls.append(("repo_info", repo_id, repo_type))
        if self.existing_private is None:
            import importlib

            from huggingface_hub import errors

            http = importlib.import_module(errors.Response.__module__.split(".")[0])  # the hub client's HTTP library
            request = http.Request("GET", "https://hub.test/api/datasets/org/name")
            raise RepositoryNotFoundError("not found", response=errors.Response(404, request=request))
        return type("Info", (), {"private": self.existing_private})()

    def create_repo(self, repo_id, repo_type, private):
        self.calls.append(("create_repo", repo_id, repo_type, private))

    def upload_folder(self, repo_id, repo_type, folder_path, commit_message):
        from pathlib import Path

        self.calls.append(("upload_folder", repo_id, repo_type))
        root = Path(folder_path)
        self.files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        return type("Commit", (), {"commit_url": f"https://hub.test/datasets/{repo_id}/commit/1"})()


def test_push_creates_a_private_repo_and_uploads_shards_and_card(labelled, tmp_path, monkeypatch):
    from curator.export import hub

    fake = _FakeHub()
    real = hub.push
    monkeypatch.setattr(hub, "push", lambda folder, repo, private: real(folder, repo, private, api=fake))
    s = export(labelled, ExportConfig(out=str(tmp_path / "x"), push_to_hub="org/name", private=True,
                                      formats=["jsonl"], order="pass"))
    assert [c[0] for c in fake.calls] == ["repo_info", "create_repo", "upload_folder"]
    assert fake.calls[1] == ("create_repo", "org/name", "dataset", True)
    assert sorted(fake.files) == ["README.md", "data/train-00000-of-00001.parquet"]
    shard = tmp_path / "uploaded.parquet"
    shard.write_bytes(fake.files["data/train-00000-of-00001.parquet"])
    back = datasets.load_dataset("parquet", data_files=str(shard), split="train")
    assert back["example_id"] == pd.read_json(tmp_path / "x" / "jsonl" / "train.jsonl", lines=True).example_id.tolist()
    assert s.pushed.startswith("https://hub.test/")


def test_private_push_to_an_existing_public_repo_is_refused(labelled, tmp_path, monkeypatch):
    from curator.errors import CuratorError
    from curator.export import hub

    fake = _FakeHub(existing_private=False)
    real = hub.push
    monkeypatch.setattr(hub, "push", lambda folder, repo, private: real(folder, repo, private, api=fake))
    with pytest.raises(CuratorError, match="public"):
        export(labelled, ExportConfig(out=str(tmp_path / "x"), push_to_hub="org/name", private=True, formats=["jsonl"]))
    assert [c[0] for c in fake.calls] == ["repo_info"]
