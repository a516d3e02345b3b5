"""examples/trl_lab.py: TRL's GRPOTrainer as "your" trainer on the lab, ingest to labels.

The slow test runs the example as a user would (a subprocess, tiny settings)
and checks what it leaves in the workspace; the fast one checks that `--help`
answers without importing torch or TRL.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, curator_env

EXAMPLE = REPO / "examples" / "trl_lab.py"
PROMPTS, G = 16, 8  # the example's prompts per step and completions per prompt


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = curator_env() | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def test_help_answers_without_importing_torch_or_trl():
    probe = ("import importlib.util, sys\n"
             f"spec = importlib.util.spec_from_file_location('trl_lab', {str(EXAMPLE)!r})\n"
             "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
             "try:\n    m.main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
             "heavy = [x for x in ('torch', 'trl', 'transformers', 'duckdb') if x in sys.modules]\n"
             "assert not heavy, heavy\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=curator_env(),
                       timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    for flag in ("--workdir", "--examples", "--steps", "--eval-n", "--seed"):
        assert flag in r.stdout
    # the defaults a user reads in --help
    spec = importlib.util.spec_from_file_location("trl_lab", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = mod.parse_args([])
    assert (args.workdir, args.examples, args.steps, args.eval_n) == ("./trl-lab", 0, 120, 16)
    with pytest.raises(SystemExit):
        mod.parse_args(["--steps", "0"])


@pytest.mark.slow
def test_the_example_trains_with_trl_imports_linked_to_both_probes_and_labels(tmp_path):
    pytest.importorskip("trl")
    from curator.store import Workspace

    steps, n_examples, eval_n = 3, 32, 4
    work = tmp_path / "work"
    r = _run("--workdir", str(work), "--examples", str(n_examples), "--steps", str(steps), "--eval-n", str(eval_n))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    for stage in range(1, 7):
        assert f"[{stage}/6]" in out
    assert "| label | examples | mean initial pass@1 | mean final pass@1 |" in out
    summary = json.loads((work / "summary.json").read_text())
    assert (work / "final" / "config.json").exists() and (work / "final" / "tokenizer.json").exists()

    with Workspace(work / "curator.duckdb", read_only=True) as ws:
        assert ws.sql("SELECT count(*) FROM examples").fetchone()[0] == n_examples

        probes = ws.sql("SELECT run_id, model FROM runs WHERE kind = 'probe' AND status = 'finished' "
                        "ORDER BY started_at").fetchall()
        assert len(probes) == 2
        (initial, initial_model), (final, final_model) = probes
        assert Path(initial_model) == (REPO / "data" / "lab" / "model").resolve()
        assert Path(final_model) == (work / "final").resolve()
        assert (summary["initial_probe"], summary["final_probe"]) == (initial, final)
        for probe in (initial, final):  # every example, eval_n samples each
            n, total = ws.sql("SELECT count(*), sum(n) FROM evals WHERE run_id = ? AND step = 0", [probe]).fetchone()
            assert (n, total) == (n_examples, n_examples * eval_n)

        # exactly one import run: the callback's, replaced by the linked import (not a second run)
        imports = ws.sql("SELECT run_id, kind, backend, status, initial_run, steps, last_step, config FROM runs "
                         "WHERE kind <> 'probe'").fetchall()
        assert len(imports) == 1
        run_id, kind, backend, status, initial_run, last, last_step, config = imports[0]
        assert (kind, backend, status) == ("import", "trl", "finished") and run_id == summary["run_id"]
        assert initial_run == initial and last == last_step == steps - 1
        config = json.loads(config)
        assert (config["initial_probe"], config["final_probe"]) == (initial, final)
        assert config["trl_args"]["num_generations"] == G and config["global_step"] == steps  # kept from the callback

        # the final probe's pass@1 counts are the import run's evals at its last step
        copied = ws.df("SELECT example_id, n, n_correct FROM evals WHERE run_id = ? AND step = ? ORDER BY 1",
                       [run_id, last])
        probed = ws.df("SELECT example_id, n, n_correct FROM evals WHERE run_id = ? AND step = 0 ORDER BY 1", [final])
        assert len(copied) == n_examples and copied.equals(probed)

        # history: TRL's global_step at reward time, 0..steps-1; per step P prompts x G completions
        per_step = ws.sql("SELECT step, sum(n), count(*), max(n) FROM history WHERE run_id = ? GROUP BY step "
                          "ORDER BY step", [run_id]).fetchall()
        assert [s for s, *_ in per_step] == list(range(steps))
        assert all(total == PROMPTS * G and rows == PROMPTS and most == G for _, total, rows, most in per_step)
        assert ws.sql("SELECT count(*) FROM history WHERE example_id NOT IN (SELECT example_id FROM examples)"
                      ).fetchone()[0] == 0

        # one label set, from this run, covering every probed example
        sets = ws.sql("SELECT label_set, run_ids FROM label_sets").fetchall()
        assert len(sets) == 1 and json.loads(sets[0][1]) == [run_id] and sets[0][0] == summary["label_set"]
        labels = ws.df("SELECT example_id, label FROM labels WHERE label_set = ?", [sets[0][0]])
        probed_ids = {x for (x,) in ws.sql("SELECT example_id FROM evals WHERE run_id = ? AND step = 0",
                                           [initial]).fetchall()}
        assert set(labels["example_id"]) == probed_ids and len(labels) == n_examples
        assert set(labels["label"]) <= {"easy", "learnable", "unlearnable", "never_solved"}  # one run: no unstable
        counts = labels["label"].value_counts().to_dict()
        assert {k: v for k, v in summary["counts"].items() if v} == counts
