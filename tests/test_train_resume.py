"""`curator train` end to end: workspace rows, and a SIGKILLed run resumes to the same result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import curator_env
from curator.pipeline import LAB_DATA

TRAIN = ["train", "--seeds", "3", "--steps", "6", "--checkpoint-every", "2", "--parallel", "1",
         "--prompts-per-step", "4", "-G", "4", "--eval-n", "2", "--max-new-tokens", "32", "--lr", "1e-4",
         "--name", "t"]


def _curator(ws: Path, *args, **kw):
    return subprocess.run([sys.executable, "-m", "curator.cli", "-q", "-w", str(ws), *args], capture_output=True,
                          text=True, env=curator_env(), timeout=600, **kw)


def _prepare(tmp: Path, name: str) -> Path:
    ws = tmp / f"{name}.duckdb"
    subset = tmp / "pool.jsonl"
    if not subset.exists():
        subset.write_text("".join((LAB_DATA / "train.jsonl").read_text().splitlines(True)[:40]))
    r = _curator(ws, "ingest", str(subset))
    assert r.returncode == 0, r.stderr
    return ws


def _tables(ws: Path) -> dict:
    con = duckdb.connect(str(ws), read_only=True)
    out = {
        "history": con.execute("SELECT * FROM history ORDER BY run_id, step, example_id").fetchall(),
        "evals": con.execute("SELECT * FROM evals ORDER BY run_id, step, example_id").fetchall(),
        "rollouts": con.execute("SELECT * EXCLUDE (run_id) FROM rollouts ORDER BY phase, step, example_id, "
                                "sample_index").fetchall(),
        "runs": con.execute("SELECT run_id, status, last_step FROM runs ORDER BY run_id").fetchall(),
    }
    con.close()
    return out


def test_sigkill_then_resume_gives_the_same_weights_and_history(tmp_path):
    straight = _prepare(tmp_path, "straight")
    r = _curator(straight, *TRAIN)
    assert r.returncode == 0, r.stderr

    killed = _prepare(tmp_path, "killed")
    ckpt = Path(str(killed) + ".runs") / "t-s3" / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "curator.cli", "-q", "-w", str(killed), *TRAIN],
                            env=curator_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 300
    while not (ckpt / "step_00000004" / "COMPLETE").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "training never reached step 4"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    mid = _tables(killed)
    assert [row[1] for row in mid["runs"] if row[0] == "t-s3"] == ["running"]
    r = _curator(killed, *TRAIN)
    assert r.returncode == 0, r.stderr

    a, b = _tables(straight), _tables(killed)
    assert a["history"] == b["history"]
    assert a["evals"] == b["evals"]
    assert a["rollouts"] == b["rollouts"]
    assert a["runs"] == b["runs"]
    wa = (Path(str(straight) + ".runs") / "t-s3" / "final" / "model.safetensors").read_bytes()
    wb = (Path(str(killed) + ".runs") / "t-s3" / "final" / "model.safetensors").read_bytes()
    assert wa == wb, "final weights differ after resume"
    # running the finished command again changes nothing
    r = _curator(killed, *TRAIN)
    assert r.returncode == 0 and _tables(killed) == b


def test_train_without_examples_is_a_clear_error(tmp_path):
    r = _curator(tmp_path / "empty.duckdb", *TRAIN)
    assert r.returncode == 2 and "curator ingest" in r.stderr and "Traceback" not in r.stderr
