"""TRL import: the reward wrapper and callback, their outcome files, and TRL's own completion logs.

Formats are those of TRL 1.16.0 (the version in the venv); see the docstring
of curator/importers/trl.py for where in TRL's source each fact comes from.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import time
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from curator.data.ingest import IngestConfig, ingest
from curator.errors import CuratorError
from curator.importers import trl as T
from curator.pipeline import LAB_DATA, LAB_MODEL
from curator.store import Workspace

N_LAB = 16


def _lab_rows(n: int = N_LAB) -> list[dict]:
    rows = [json.loads(x) for x in (LAB_DATA / "train.jsonl").read_text().splitlines() if x.strip()][:n]
    return [{"example_id": f"lab-{i:03d}", "prompt": r["prompt"], "answer": r["answer"]} for i, r in enumerate(rows)]


def _ingest(ws: Workspace, tmp_path: Path, rows: list[dict], name: str = "problems") -> None:
    src = tmp_path / f"{name}.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = ingest(ws, IngestConfig(source=str(src), id_field="example_id"))
    assert s.n_new == len(rows), s


def _history(ws: Workspace, run_id: str) -> dict[tuple[int, str], tuple[int, int]]:
    return {(s, e): (n, c) for s, e, n, c in ws.sql(
        "SELECT step, example_id, n, n_correct FROM history WHERE run_id = ? ORDER BY 1, 2", [run_id])}


def _state(step: int) -> SimpleNamespace:
    """The part of transformers' TrainerState a reward function sees."""
    return SimpleNamespace(global_step=step, is_world_process_zero=True)


def _trl_call(wrapper, rows: list[dict], rewards: list, step: int | None, G: int = 4, with_ids: bool = True,
              **extra):
    """Call `wrapper` the way GRPOTrainer._calculate_rewards does (TRL 1.16, grpo_trainer.py:1579-1627):
    keyword arguments only; dataset columns repeated per completion; trainer_state, log_extra, log_metric."""
    group = [r for r in rows for _ in range(G)]
    kwargs = {"answer": [r["answer"] for r in group], "log_extra": lambda *a: None, "log_metric": lambda *a: None}
    if with_ids:
        kwargs["example_id"] = [r["example_id"] for r in group]
    if step is not None:
        kwargs["trainer_state"] = _state(step)
    kwargs.update(extra)
    completions = [f"\\boxed{{{r['answer']}}}" for r in group]
    return wrapper(prompts=[r["prompt"] for r in group], completions=completions,
                   completion_ids=[[7] * (3 + i) for i in range(len(group))], **kwargs)


def _fixed(rewards: list):
    """A reward function returning `rewards`, remembering what it was called with."""
    seen = []

    def lab_correct(prompts, completions, completion_ids=None, **kwargs):
        seen.append({"prompts": prompts, "completions": completions, "completion_ids": completion_ids, **kwargs})
        return rewards
    return lab_correct, seen


# -- the wrapper -----------------------------------------------------------------------------------


def test_wrapper_returns_rewards_unchanged_keeps_the_name_and_writes_one_line_per_completion(tmp_path):
    rows = _lab_rows(2)
    rewards = [1.0, 0.0, None, 1.0, 0.0, 0.0, 0.25, 0.75]  # None: "not applicable" in TRL
    inner, seen = _fixed(rewards)
    wrapped = T.record_outcomes(inner, tmp_path / "out", run_name="r1")
    assert wrapped.__name__ == "lab_correct" and wrapped.__wrapped__ is inner
    out = _trl_call(wrapped, rows, rewards, step=5)
    assert out is rewards  # the very list TRL gets back
    call = seen[0]  # the user's function got exactly what TRL passed
    assert set(call) == {"prompts", "completions", "completion_ids", "answer", "example_id", "trainer_state",
                         "log_extra", "log_metric"}
    assert call["trainer_state"].global_step == 5 and len(call["completion_ids"]) == 8

    lines = (tmp_path / "out" / "outcomes-rank0.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert len(recs) == 8
    assert [r["reward"] for r in recs] == rewards
    assert [r["correct"] for r in recs] == [True, False, None, True, False, False, False, True]
    assert [r["example_id"] for r in recs] == ["lab-000"] * 4 + ["lab-001"] * 4
    assert [r["length"] for r in recs] == [3 + i for i in range(8)]
    first = recs[0]
    assert (first["run"], first["step"], first["step_from"], first["rank"], first["func"], first["phase"]) == \
        ("r1", 5, "trainer_state", 0, "lab_correct", None)
    assert first["prompt"] is None and "completion" not in first  # the id is known; completions not kept

    # Without trainer_state the step is the call count, and the record says so.
    plain = T.record_outcomes(_fixed([1.0] * 4)[0], tmp_path / "plain", keep_completions=True)
    _trl_call(plain, rows[:1], None, step=None)
    _trl_call(plain, rows[:1], None, step=None)
    recs = [json.loads(x) for x in (tmp_path / "plain" / "outcomes-rank0.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [0] * 4 + [1] * 4 and {r["step_from"] for r in recs} == {"call_count"}
    assert recs[0]["completion"] == "\\boxed{" + rows[0]["answer"] + "}"
    records, warnings = T.read_outcome_files(tmp_path / "plain")
    assert any("counts of reward-function calls" in w for w in warnings)


def test_wrapper_names_match_trl_for_partials_and_callable_classes_and_async_stays_async(tmp_path):
    import functools

    def base(prompts, completions, scale=1.0, **kw):
        return [scale] * len(completions)

    class Judge:
        def __call__(self, prompts, completions, **kw):
            return [0.0] * len(completions)

    async def async_correct(prompts, completions, **kw):
        return [1.0] * len(completions)

    assert T.record_outcomes(functools.partial(base, scale=2.0), tmp_path).__name__ == "base"
    assert T.record_outcomes(Judge(), tmp_path).__name__ == "Judge"
    wrapped = T.record_outcomes(async_correct, tmp_path / "a")
    assert wrapped.__name__ == "async_correct" and inspect.iscoroutinefunction(wrapped)
    out = asyncio.run(_trl_call(wrapped, _lab_rows(1), None, step=0))
    assert out == [1.0] * 4
    assert len((tmp_path / "a" / "outcomes-rank0.jsonl").read_text().splitlines()) == 4


def test_a_failing_recorder_never_breaks_training(tmp_path, caplog):
    inner, _ = _fixed([1.0, 0.0, 1.0, 0.0])
    wrapped = T.record_outcomes(inner, tmp_path / "out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "outcomes-rank0.jsonl").mkdir()  # cannot be opened as a file
    out = _trl_call(wrapped, _lab_rows(1), None, step=0)
    assert out == [1.0, 0.0, 1.0, 0.0]
    assert "could not record" in caplog.text


def test_recording_costs_little_per_call(tmp_path):
    rows = _lab_rows(16)
    rewards = [float(i % 2) for i in range(16 * 64)]
    wrapped = T.record_outcomes(_fixed(rewards)[0], tmp_path / "out")
    _trl_call(wrapped, rows, rewards, step=0, G=64)
    t = time.perf_counter()
    for step in range(1, 6):
        _trl_call(wrapped, rows, rewards, step=step, G=64)
    per_call = (time.perf_counter() - t) / 5
    assert per_call < 0.25, f"{per_call:.3f} s to record 1024 completions"  # ~10 ms here, unloaded


# -- reading and importing outcome files -----------------------------------------------------------


def test_two_ranks_merge_into_one_history_row_per_step_and_example(ws, tmp_path, monkeypatch):
    rows = _lab_rows(4)
    _ingest(ws, tmp_path, rows)
    out = tmp_path / "out"
    # TRL hands each process a slice of the generation batch; here each group of 4 is split 2 + 2 over 2 ranks.
    expected = defaultdict(lambda: [0, 0])
    current: list[float] = []

    def lab_correct(prompts, completions, **kw):
        return current
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        wrapped = T.record_outcomes(lab_correct, out)  # one per process
        for step in (0, 1):
            current = [1.0 if (rank + step + i) % 3 == 0 else 0.0 for i in range(8)]
            _trl_call(wrapped, rows, current, step=step, G=2)
            for r, rew in zip([x for x in rows for _ in range(2)], current):
                expected[(step, r["example_id"])][0] += 1
                expected[(step, r["example_id"])][1] += rew > 0.5
    T.close_outcomes(out)
    assert sorted(p.name for p in out.iterdir()) == ["outcomes-rank0.jsonl", "outcomes-rank1.jsonl"]
    records, warnings = T.read_outcome_files(out)
    assert warnings == [] and len(records) == 2 * 2 * 8 and set(records["rank"]) == {0, 1}
    s = T.import_outcomes(ws, out)
    assert s.run_id == T.outcomes_run_id(out)
    assert (s.n_records, s.n_matched, s.n_rows, s.unmatched) == (32, 32, 8, 0)
    assert _history(ws, s.run_id) == {k: tuple(v) for k, v in expected.items()}
    assert all(n == 4 for n, _ in _history(ws, s.run_id).values())
    kind, backend = ws.sql("SELECT kind, backend FROM runs WHERE run_id = ?", [s.run_id]).fetchone()
    assert (kind, backend) == ("import", "trl")
    again = T.import_outcomes(ws, out)  # the same folder is the same run: replaced, not added
    assert again.run_id == s.run_id and again.replaced
    assert ws.sql("SELECT count(*) FROM history").fetchone()[0] == 8


def test_a_truncated_last_line_is_skipped_with_a_warning_and_a_resumed_run_appends_cleanly(ws, tmp_path):
    rows = _lab_rows(2)
    _ingest(ws, tmp_path, rows)
    out = tmp_path / "out"
    inner, _ = _fixed([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    w = T.record_outcomes(inner, out)
    _trl_call(w, rows, None, step=0)
    T.close_outcomes(out)
    path = out / "outcomes-rank0.jsonl"
    with open(path, "a") as f:  # the process was killed in the middle of a line
        f.write('{"run": null, "session": "x", "step": 1, "example_id": "lab-0')
    records, warnings = T.read_outcome_files(out)
    assert len(records) == 8
    assert warnings == ["outcomes-rank0.jsonl line 9: truncated (the run stopped while writing it); skipped"]

    # Resumed from the step-1 checkpoint: a new session appends after the torn line, on a line of its own.
    inner2, _ = _fixed([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    w2 = T.record_outcomes(inner2, out)
    w2.recorder.session = "9" + w2.recorder.session[1:]  # started later than the first session
    _trl_call(w2, rows, None, step=1)
    T.close_outcomes(out)
    records, warnings = T.read_outcome_files(out)
    assert warnings == ["outcomes-rank0.jsonl line 9: not a JSON outcome record; skipped"]
    s = T.import_outcomes(ws, out)
    assert _history(ws, s.run_id) == {(0, "lab-000"): (4, 1), (0, "lab-001"): (4, 2),
                                      (1, "lab-000"): (4, 4), (1, "lab-001"): (4, 0)}
    assert "line 9" in s.warnings[0]


def test_a_step_scored_again_after_a_resume_keeps_the_later_session(tmp_path):
    rows = _lab_rows(1)
    out = tmp_path / "out"
    first = T.record_outcomes(_fixed([0.0] * 4)[0], out)
    first.recorder.session = "1000000000.000000-1"
    for step in (0, 1, 2, 3):  # killed after step 3
        _trl_call(first, rows, None, step=step)
    again = T.record_outcomes(_fixed([1.0] * 4)[0], out)
    again.recorder.session = "1000000500.000000-2"
    _trl_call(again, rows, None, step=2)  # resumed from the checkpoint at step 2, killed again
    records, warnings = T.read_outcome_files(out)
    by_step = records.groupby("step")["correct"].agg(["size", "sum"])
    # step 3 of the first session belongs to a trajectory the resumed run abandoned
    assert by_step.to_dict("index") == {0: {"size": 4, "sum": 0}, 1: {"size": 4, "sum": 0},
                                        2: {"size": 4, "sum": 4}}
    assert warnings == ["8 records of steps 2, 3 were superseded by a later session that started again at or "
                        "before them (a resumed run): kept the later session's records"]


def test_missing_ids_match_by_prompt_and_unknown_prompts_are_reported(ws, tmp_path):
    rows = _lab_rows(3)
    _ingest(ws, tmp_path, rows[:2])  # the third problem is not in the workspace
    out = tmp_path / "out"
    rewards = [1.0] * 4 + [0.0] * 4 + [1.0] * 4
    w = T.record_outcomes(_fixed(rewards)[0], out)  # id_column "example_id" is not among TRL's kwargs
    _trl_call(w, rows, rewards, step=0, with_ids=False)
    # Chat-format prompts (TRL conversational): matched by the last message's content, as ingest maps them.
    chat = [[{"role": "system", "content": "Solve."}, {"role": "user", "content": rows[1]["prompt"]}]] * 4
    w2 = T.record_outcomes(_fixed([1.0] * 4)[0], out)
    w2(prompts=chat, completions=[[{"role": "assistant", "content": "x"}]] * 4, completion_ids=None,
      trainer_state=_state(1), answer=[rows[1]["answer"]] * 4)
    recs = [json.loads(x) for x in (out / "outcomes-rank0.jsonl").read_text().splitlines()]
    assert {r["example_id"] for r in recs} == {None}
    assert recs[-1]["prompt"] == rows[1]["prompt"] and recs[-1]["length"] is None
    s = T.import_outcomes(ws, out)
    assert _history(ws, s.run_id) == {(0, "lab-000"): (4, 4), (0, "lab-001"): (4, 0), (1, "lab-001"): (4, 4)}
    assert s.unmatched == 4 and s.unmatched_samples == [rows[2]["prompt"]]
    assert any("4 of 16 records match no example" in x for x in s.warnings)


def test_several_runs_or_reward_functions_in_one_folder_must_be_chosen(tmp_path):
    rows = _lab_rows(1)
    out = tmp_path / "out"
    _trl_call(T.record_outcomes(_fixed([1.0] * 4)[0], out, run_name="a"), rows, None, step=0)
    _trl_call(T.record_outcomes(_fixed([0.0] * 4)[0], out, run_name="b"), rows, None, step=0)

    def format_reward(prompts, completions, **kw):
        return [0.5] * len(completions)
    _trl_call(T.record_outcomes(format_reward, out, run_name="b"), rows, None, step=0)
    with pytest.raises(CuratorError, match="several run names \\(a, b\\)"):
        T.read_outcome_files(out)
    records, _ = T.read_outcome_files(out, run_name="a")
    assert len(records) == 4 and records["correct"].all()
    with pytest.raises(CuratorError, match="several reward functions \\(format_reward, lab_correct\\)"):
        T.read_outcome_files(out, run_name="b")
    records, _ = T.read_outcome_files(out, run_name="b", reward_func="lab_correct")
    assert len(records) == 4 and not records["correct"].any()
    with pytest.raises(CuratorError, match="no outcomes-rank"):
        T.read_outcome_files(tmp_path / "empty")


def test_callback_tags_evaluation_and_imports_on_the_main_process_only(ws_path, tmp_path):
    rows = _lab_rows(2)
    with Workspace(ws_path) as ws:
        _ingest(ws, tmp_path, rows)
    out = tmp_path / "out"
    w = T.record_outcomes(_fixed([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])[0], out)
    cb = T.CuratorCallback(ws_path, out, run_id="trl-test", model="lab")
    from transformers import TrainerCallback
    assert isinstance(cb, TrainerCallback)
    args, control = SimpleNamespace(num_generations=4, output_dir=str(tmp_path)), SimpleNamespace()
    cb.on_train_begin(args, _state(0), control)
    _trl_call(w, rows, None, step=0)  # eval_on_start: before any step
    cb.on_step_begin(args, _state(0), control)
    _trl_call(w, rows, None, step=0)  # training step 0
    cb.on_step_end(args, _state(1), control)
    _trl_call(w, rows, None, step=1)  # evaluation after step 1
    cb.on_train_end(args, SimpleNamespace(global_step=1, is_world_process_zero=False), control)
    assert cb.summary is None and not ws_path.with_name(ws_path.name + ".owner.json").exists()
    with Workspace(ws_path) as ws:
        assert ws.sql("SELECT count(*) FROM runs").fetchone()[0] == 0  # rank != 0 imports nothing

    cb.on_train_end(args, _state(1), control)
    assert cb.error is None and cb.summary.run_id == "trl-test"
    assert any("16 records were scored outside training steps" in x for x in cb.summary.warnings)
    with Workspace(ws_path) as ws:
        assert _history(ws, "trl-test") == {(0, "lab-000"): (4, 1), (0, "lab-001"): (4, 3)}
        model, config = ws.sql("SELECT model, config FROM runs WHERE run_id = 'trl-test'").fetchone()
    assert model == "lab" and json.loads(config)["trl_args"]["num_generations"] == 4

    # An import that fails (no examples in that workspace) is reported, and does not fail the training run.
    bad = T.CuratorCallback(tmp_path / "other.duckdb", out)
    bad.on_train_end(args, _state(1), control)
    assert isinstance(bad.error, CuratorError) and bad.summary is None


# -- TRL's completion logs (log_completions=True) ---------------------------------------------------


def _trl_log(output_dir: Path, global_step: int, prompts: list, completions: list, rewards: dict[str, list],
             advantages: list, extra: dict | None = None) -> Path:
    """Write a completions file exactly as TRL 1.16's GRPOTrainer.log does (grpo_trainer.py:3341-3357)."""
    table = {
        "step": [global_step] * len(prompts),
        "prompt": prompts,
        "completion": completions,
        **rewards,
        **(extra or {}),
        "advantage": advantages,
    }
    (output_dir / "completions").mkdir(parents=True, exist_ok=True)
    path = output_dir / "completions" / f"completions_{global_step:05d}.parquet"
    pd.DataFrame(table).to_parquet(path)
    return path


def _batch(rows: list[dict], correct: list[list[int]]) -> tuple[list, list, dict, list]:
    """One generation batch: prompts repeated per completion, lab_correct 0/1, a format reward, advantages."""
    prompts, comps, acc = [], [], []
    for r, marks in zip(rows, correct):
        for m in marks:
            prompts.append(r["prompt"])
            comps.append(f"\\boxed{{{r['answer'] if m else 0}}}")
            acc.append(float(m))
    return prompts, comps, {"lab_correct": acc, "format_reward": [1.0] * len(acc)}, [a - 0.5 for a in acc]


def test_trl_completion_logs_import_with_their_gaps_named(ws, tmp_path):
    rows = _lab_rows(4)
    _ingest(ws, tmp_path, rows[:3])
    out = tmp_path / "trl-out"
    stranger = {"prompt": "What is the capital of France?", "answer": "Paris"}
    # completions_00000: an evaluation at the start (eval_on_start); never training.
    _trl_log(out, 0, *_batch(rows[:1], [[1, 1]]))
    # step 1 (sampled at step 0), and step 2 repeating the same batch (steps_per_generation=2).
    b1 = _batch(rows[:2], [[1, 0, 0, 0], [1, 1, 1, 0]])
    _trl_log(out, 1, *b1)
    _trl_log(out, 2, *b1)
    # step 3: a new batch with a prompt not in the workspace and a None (NaN) reward.
    p, c, rw, adv = _batch([rows[2], stranger], [[1, 1, 0, 0], [0, 0, 0, 0]])
    rw["lab_correct"][3] = math.nan
    _trl_log(out, 3, p, c, rw, adv, extra={"judge_note": ["ok"] * len(p)})
    # step 4: an evaluation step (trainer_state.json says so): skipped. Step 5 is missing (logging gap).
    _trl_log(out, 4, *_batch(rows[:1], [[0, 0, 0, 0]]))
    # step 6: a partial group (3 of 4 rows) for rows[1].
    _trl_log(out, 6, *_batch(rows[:2], [[1, 1, 1, 1], [1, 0, 0]]))
    (out / "checkpoint-6").mkdir()
    (out / "checkpoint-6" / "trainer_state.json").write_text(json.dumps({
        "global_step": 6, "log_history": [{"loss": 0.1, "step": 1}, {"eval_loss": 0.2, "step": 4},
                                          {"loss": 0.1, "step": 6}]}))

    with pytest.raises(CuratorError, match="several reward columns .*: format_reward, lab_correct"):
        T.read_trl_completions(out)
    with pytest.raises(CuratorError, match="no column 'accuracy'"):
        T.read_trl_completions(out, reward_column="accuracy")
    records, warnings = T.read_trl_completions(out, reward_column="lab_correct", num_generations=4)
    assert sorted(set(records["step"])) == [0, 2, 5]  # logged step - 1
    assert set(records["rank"]) == {-1} and records["length"].isna().all() and records["example_id"].isna().all()
    text = "\n".join(warnings)
    assert "files of steps 0, 4 skipped" in text and "checkpoint-6/trainer_state.json" in text
    assert "files of steps 2 repeat the batch" in text
    assert "1 rows have no 'lab_correct' reward" in text
    assert "only 3 of the 6 steps from 0 to 5 have logged completions" in text
    assert "1 of 6 (step, prompt) groups" in text and "steps 5" in text
    assert "no example id" in text

    s = T.import_completions(ws, out / "completions", reward_column="lab_correct", num_generations=4)
    assert _history(ws, s.run_id) == {
        (0, "lab-000"): (4, 1), (0, "lab-001"): (4, 3),
        (2, "lab-002"): (3, 2),  # the NaN row is not counted
        (5, "lab-000"): (4, 4), (5, "lab-001"): (3, 1),
    }
    assert s.unmatched == 4 and s.unmatched_samples == [stranger["prompt"]]
    kind, backend, config = ws.sql("SELECT kind, backend, config FROM runs WHERE run_id = ?", [s.run_id]).fetchone()
    assert (kind, backend) == ("import", "trl") and "files of steps 2 repeat" in "".join(json.loads(config)["warnings"])


def test_chat_format_completion_logs_and_ambiguous_prompts(ws, tmp_path):
    rows = _lab_rows(2)
    _ingest(ws, tmp_path, rows)
    # The same prompt with another answer, from another dataset: the prompt alone cannot say which.
    _ingest(ws, tmp_path, [{"example_id": "twin", "prompt": rows[0]["prompt"], "answer": "999"}], name="other")
    chat = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": r["prompt"]}]
            for r in rows for _ in range(2)]
    comps = [[{"role": "assistant", "content": f"\\boxed{{{r['answer']}}}"}] for r in rows for _ in range(2)]
    path = _trl_log(tmp_path / "o", 1, chat, comps, {"lab_correct": [1.0, 0.0, 1.0, 1.0]}, [0.0] * 4)
    records, warnings = T.read_trl_completions(path)  # one file; the only reward column
    assert list(records["prompt"]) == [rows[0]["prompt"]] * 2 + [rows[1]["prompt"]] * 2
    assert records["completion"].iloc[0] == "\\boxed{" + rows[0]["answer"] + "}"
    s = T.import_completions(ws, path, keep_completions=True)
    assert _history(ws, s.run_id) == {(0, "lab-001"): (2, 2)}
    assert any("1 logged prompts match several examples" in w for w in s.warnings)
    assert ws.sql("SELECT count(*) FROM rollouts WHERE run_id = ?", [s.run_id]).fetchone()[0] == 2


# -- a real TRL run --------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers 5's gradient_checkpointing rename
@pytest.mark.parametrize("setup", ["plain", "steps_per_generation=2", "evaluation"])
def test_real_trl_grpo_run_imports_exactly_the_rewards_trl_computed(ws_path, tmp_path, setup):
    """TRL 1.16's GRPOTrainer, 3 steps on the lab model on the CPU, with the wrapper and the callback.

    plain: 2 prompts x 4 completions sampled and trained on at each step. steps_per_generation=2: a batch
    of 4 prompts x 4 sampled at steps 0 and 2, each trained on for two steps; TRL's completion log writes
    the step-0 batch twice (files 1 and 2). evaluation: an evaluation after step 2 scores 4 held-out
    problems with the same reward function, and so does one after the last step; those calls are not
    training history, and TRL's log files of steps 2 and 3 hold them instead of the training batches.
    """
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from curator.verify import Verifier

    spg = 2 if setup == "steps_per_generation=2" else 1
    rows = _lab_rows(N_LAB + 4)
    train, held_out = rows[:N_LAB], rows[N_LAB:]
    with Workspace(ws_path) as ws:
        _ingest(ws, tmp_path, rows)
    out_dir, trl_dir = tmp_path / "outcomes", tmp_path / "trl"
    seen: list[tuple[int, list[str], list[float]]] = []  # what TRL computed: (global_step, ids, rewards)
    extra = dict(eval_strategy="no", save_strategy="no")
    if setup == "evaluation":
        extra = dict(eval_strategy="steps", eval_steps=2, per_device_eval_batch_size=8, save_strategy="steps",
                     save_steps=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with Verifier(workers=1) as verifier:
            def lab_correct(prompts, completions, answer, example_id, trainer_state, completion_ids=None, **kw):
                rewards = [float(o.reward) for o in verifier.verify_batch(list(completions), list(answer))]
                seen.append((trainer_state.global_step, list(example_id), rewards))
                return rewards

            reward = T.record_outcomes(lab_correct, out_dir)
            config = GRPOConfig(
                output_dir=str(trl_dir), use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
                use_vllm=False, report_to="none", max_steps=3, num_generations=4, per_device_train_batch_size=8,
                gradient_accumulation_steps=1, steps_per_generation=spg, max_completion_length=40,
                temperature=1.0, beta=0.0, learning_rate=1e-4, logging_steps=1, log_completions=True,
                num_completions_to_print=0, disable_tqdm=True, seed=0, dataloader_num_workers=0, **extra)
            model = AutoModelForCausalLM.from_pretrained(str(LAB_MODEL), dtype=torch.float32)
            tok = AutoTokenizer.from_pretrained(str(LAB_MODEL))
            callback = T.CuratorCallback(ws_path, out_dir, model="lab", strict=True)
            trainer = GRPOTrainer(
                model=model, reward_funcs=reward, args=config, train_dataset=Dataset.from_list(train),
                eval_dataset=Dataset.from_list(held_out) if setup == "evaluation" else None,
                processing_class=tok, callbacks=[callback])
            assert trainer.reward_func_names == ["lab_correct"]
            trainer.train()
    finally:
        torch.set_num_threads(threads)

    held_ids = {r["example_id"] for r in held_out}
    evals = [x for x in seen if set(x[1]) <= held_ids]
    seen = [x for x in seen if not set(x[1]) & held_ids]
    # global_step at reward time: the optimizer steps finished so far
    assert [s for s, _, _ in seen] == ([0, 2] if spg == 2 else [0, 1, 2])
    # evaluations after step 2 (eval_steps) and after the last step; 16 completions each, 8 a batch
    assert [s for s, _, _ in evals] == ([2, 2, 3, 3] if setup == "evaluation" else [])
    expected: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for step, ids, rewards in seen:
        assert len(ids) == 8 * spg
        for ex, r in zip(ids, rewards):
            expected[(step, ex)][0] += 1
            expected[(step, ex)][1] += r > 0.5
    s = callback.summary
    assert callback.error is None and s is not None and s.unmatched == 0 and s.n_records == 24 + 8 * (spg - 1)
    assert any("32 records were scored outside training steps" in w for w in s.warnings) == (setup == "evaluation")
    with Workspace(ws_path) as ws:
        history = _history(ws, s.run_id)
        assert history == {k: tuple(v) for k, v in expected.items()}
        assert all(n == 4 for n, _ in history.values())
        kind, backend, status = ws.sql("SELECT kind, backend, status FROM runs WHERE run_id = ?",
                                       [s.run_id]).fetchone()
        assert (kind, backend, status) == ("import", "trl", "finished")
        mean_len = ws.sql("SELECT min(mean_length), max(mean_length) FROM history").fetchone()
        assert 1 <= mean_len[0] <= mean_len[1] <= 40

        # TRL's own logs of the same run: one file per logged step, the rewards TRL computed, one step later.
        files = sorted(p.name for p in (trl_dir / "completions").glob("*.parquet"))
        assert files == ["completions_00001.parquet", "completions_00002.parquet", "completions_00003.parquet"]
        frames = {int(f[12:17]): pd.read_parquet(trl_dir / "completions" / f) for f in files}
        assert all(list(f.columns) == ["step", "prompt", "completion", "lab_correct", "advantage"]
                   for f in frames.values())
        by_prompt = {r["prompt"]: r["example_id"] for r in rows}
        if spg == 2:  # the step-0 batch, logged again at step 2
            assert frames[2].drop(columns="step").equals(frames[1].drop(columns="step"))
            del frames[2]
        if setup == "evaluation":  # the evaluations' last batches replaced the training logs of steps 2 and 3
            for step in (2, 3):
                assert {by_prompt[p] for p in frames[step]["prompt"]} <= held_ids
                del frames[step]
            expected = {k: v for k, v in expected.items() if k[0] == 0}
        logged = pd.concat(frames.values())
        got = Counter((int(st) - 1, by_prompt[p], float(r)) for st, p, r in
                      zip(logged["step"], logged["prompt"], logged["lab_correct"]))
        assert got == Counter((st, ex, r) for st, ids, rewards in seen for ex, r in zip(ids, rewards)
                              if (st, ex) in expected)
        c = T.import_completions(ws, trl_dir)
        assert any("files of steps 2 repeat the batch" in w for w in c.warnings) == (spg == 2)
        assert any("files of steps 2, 3 skipped" in w and "checkpoint-3" in w for w in c.warnings) == (
            setup == "evaluation")
        assert c.run_id != s.run_id and _history(ws, c.run_id) == {k: tuple(v) for k, v in expected.items()}
