"""The workspace: migrations, batched writes, the lock message, checkpointed copies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from curator.errors import SchemaTooNew, WorkspaceLocked
from curator.store import Workspace
from curator.store.migrations import LATEST, MIGRATIONS, migrate

DOCUMENTED = {
    "datasets", "examples", "quarantine", "runs", "history", "evals", "rollouts", "label_sets",
    "labels", "gradients", "gradsim", "judgments", "exports", "export_drops", "schema_version", "scores",
    "gradient_configs", "gradsim_groups", "judge_cache", "reasoning", "prediction_sets", "predictions",
}


def test_new_workspace_has_every_documented_table_and_version(ws):
    assert set(ws.counts()) == DOCUMENTED
    assert ws.schema_version() == LATEST
    rows = ws.sql("SELECT version, name FROM schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]


def test_migrations_are_applied_once(ws_path):
    with Workspace(ws_path):
        pass
    con = duckdb.connect(str(ws_path))
    assert migrate(con) == []  # nothing pending on reopen
    assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    con.close()


def test_failed_migration_rolls_back(ws_path, monkeypatch):
    from curator.store import migrations

    bad = migrations.Migration(LATEST + 1, "broken", "CREATE TABLE half (x INT); SELECT * FROM nowhere;")
    with Workspace(ws_path):
        pass
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, bad))
    monkeypatch.setattr(migrations, "LATEST", LATEST + 1)
    con = duckdb.connect(str(ws_path))
    with pytest.raises(duckdb.Error):
        migrate(con)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "half" not in tables
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == LATEST
    con.close()


def test_newer_schema_is_refused(ws_path):
    with Workspace(ws_path) as w:
        w.execute("INSERT INTO schema_version VALUES (999, 'from the future', now()::TIMESTAMP)")
    with pytest.raises(SchemaTooNew, match="upgrade curator"):
        Workspace(ws_path)


def test_write_batches_and_conflict_modes(ws):
    rows = pa.table({
        "run_id": ["r", "r"], "step": [1, 2], "example_id": ["a", "a"], "n": [8, 8],
        "n_correct": [1, 0], "n_timeout": [0, 0], "n_error": [0, 0], "kept": [True, False],
    })
    assert ws.write("history", rows) == 2
    with pytest.raises(duckdb.ConstraintException):
        ws.write("history", rows)
    ws.write("history", rows, on_conflict="ignore")
    changed = rows.set_column(4, "n_correct", pa.array([5, 5]))
    ws.write("history", changed, on_conflict="replace")
    assert ws.sql("SELECT sum(n_correct), count(*) FROM history").fetchone() == (10, 2)
    assert ws.write("history", pd.DataFrame(columns=rows.column_names)) == 0


def test_transaction_rolls_back_everything(ws):
    frame = pd.DataFrame({"run_id": ["r"], "kind": ["train"], "config": ["{}"], "status": ["running"],
                          "started_at": [pd.Timestamp("2026-01-01")]})
    with pytest.raises(RuntimeError):
        with ws.transaction():
            ws.write("runs", frame)
            raise RuntimeError("boom")
    assert ws.counts()["runs"] == 0


def test_second_process_gets_one_line_naming_the_holder(ws_path, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.argv = ["curator", "train", "--seeds", "1,42"]
            from curator.store import Workspace
            w = Workspace({str(ws_path)!r})
            print("ready", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WorkspaceLocked) as e:
            Workspace(ws_path, read_only=True)
        msg = str(e.value)
        assert f"PID {holder.pid}" in msg and "curator train --seeds 1,42" in msg
        assert "\n" not in msg and "--workspace" in msg
        # The CLI prints exactly that line, exit 2, no traceback.
        r = subprocess.run([sys.executable, "-m", "curator.cli", "--workspace", str(ws_path), "info"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert f"PID {holder.pid}" in r.stderr
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.2)
    with Workspace(ws_path):  # a killed holder leaves nothing that blocks
        pass


def test_snapshot_checkpoints_first(ws, tmp_path):
    ws.write("runs", pd.DataFrame({"run_id": ["r1"], "kind": ["train"], "config": ["{}"],
                                   "status": ["finished"], "started_at": [pd.Timestamp("2026-01-01")]}))
    copy = ws.snapshot(tmp_path / "copy.duckdb")
    assert not (tmp_path / "copy.duckdb.wal").exists()
    con = duckdb.connect(str(copy), read_only=True)
    assert con.execute("SELECT run_id FROM runs").fetchall() == [("r1",)]
    con.close()


def test_owner_file_redacts_secrets(ws_path):
    import json
    import sys as _sys

    old = _sys.argv
    _sys.argv = ["curator", "judge", "--api-key", "sk-abcdefghijklmnopqrstuvwx"]
    try:
        with Workspace(ws_path) as w:
            info = json.loads(w.owner_path.read_text())
    finally:
        _sys.argv = old
    assert "sk-abcdefghijklmnopqrstuvwx" not in info["command"]
    assert not (ws_path.parent / (ws_path.name + ".owner.json")).exists()
