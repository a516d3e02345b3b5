"""TRL's GRPOTrainer -> `history` rows of an `import` run, two ways.

1. Record while training (exact). Wrap your reward function with
   `record_outcomes` and add `CuratorCallback`:

       from curator.importers.trl import CuratorCallback, record_outcomes
       reward = record_outcomes(my_reward, "outcomes/", id_column="example_id")
       trainer = GRPOTrainer(..., reward_funcs=reward,
                             callbacks=[CuratorCallback("curator.duckdb", "outcomes/")])

   The wrapper returns the rewards unchanged and appends one JSON line per
   completion to `outcomes/outcomes-rank{rank}.jsonl`; at the end of training
   the callback (main process only) reads every rank's file and imports the
   run. `read_outcome_files` / `import_outcomes` do the same later, e.g. for a
   run that was killed (a truncated last line is skipped with a warning).

2. Read TRL's own completion logs (approximate): `read_trl_completions` /
   `import_completions` on `<output_dir>/completions/`.

What TRL 1.16.0 does (read in trl/trainer/grpo_trainer.py and grpo_config.py of
that release, and transformers 5.23's trainer.py):

- `GRPOTrainer._calculate_rewards` (grpo_trainer.py:1579-1650) calls each
  custom reward function as `f(prompts=..., completions=...,
  completion_ids=..., **reward_kwargs)`: `prompts` and `completions` are this
  process's slice, one entry per completion (raw dataset prompts: text, or a
  list of chat messages; completions are decoded text, or
  `[{"role": "assistant", "content": ...}]` for chat prompts),
  `completion_ids` a list of token-id lists. `reward_kwargs` holds every other
  dataset column as a list with one value per completion (lines 1584-1585), plus
  `trainer_state` (the `TrainerState`, line 1588), `log_extra` and
  `log_metric` (callables, lines 1591/1594) and `environments` when an
  environment factory is used (line 1598). The call is at lines 1626-1627;
  a `None` reward becomes NaN (line 1630), and
  async reward functions are awaited (`is_async_callable`, utils.py:247).
  The function's display name is `get_callable_name` (utils.py:236): its
  `__name__`, else the class name.
- Rewards are computed in `_generate_and_score_completions` (line 2753),
  inside the training step, before the optimizer update; transformers then
  increments `global_step` (trainer.py:1947) and calls `on_step_end` before it
  logs, evaluates and saves (`_maybe_log_save_evaluate`, trainer.py:1950; it
  logs only when `global_step` has advanced, trainer.py:2242). So
  `trainer_state.global_step` at reward time is the number of finished
  optimizer steps: 0 for the first step. That is the `step` recorded here.
  Evaluation also calls the reward functions, between `on_step_end` and the
  next `on_step_begin`; `CuratorCallback` marks that time so those records
  are tagged `phase: "eval"` and kept out of the training history.
- With `log_completions=True`, `GRPOTrainer.log` (lines 3323-3357), on the
  main process, writes `<output_dir>/completions/completions_{global_step:05d}.parquet`
  at every logging step (and once more at the end of training) from
  `self._logs`, a set of deques of length `generation_batch_size`
  (lines 1088-1095) filled after the rewards, gathered over all processes
  (lines 2833-2844). Columns, in order: `step` (the `global_step` at log
  time, i.e. one more than the step the batch was sampled at), `prompt`,
  `completion` (images stripped), one float column per reward function named
  by its display name (NaN where it returned None), one column per
  `log_extra` name, and `advantage`. No example id, no token lengths, no rank.
  So each file holds the latest generation batch only: with
  `logging_steps` > 1 (GRPOConfig's default is 10) the batches of the steps in
  between are never written, and with `steps_per_generation` > `logging_steps`
  the same batch is written again under a later step.
  `num_completions_to_print` limits only the rich console print, and
  `log_unique_prompts` (1.x's name for `wandb_log_unique_prompts`) only the
  wandb / trackio table, not the parquet files.
  An evaluation logs through the same method, so the file of a step at which
  the trainer evaluated holds evaluation completions (possibly mixed with the
  tail of the training batch), under the same file name.

`read_trl_completions` therefore maps a file's `step` back to the sampling
step (`step - 1`), drops batches repeated from the previous file, skips files
written at evaluation steps (known from a `trainer_state.json` beside the
folder or in a checkpoint; step 0 is always evaluation), matches rows to
examples by prompt text, and warns about steps with no file and groups with
fewer than `num_generations` rows.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from curator.data.ids import normalize
from curator.errors import CuratorError
from curator.importers.records import ImportSummary, import_records, records_frame, source_run_id
from curator.store import Workspace

log = logging.getLogger("curator.importers.trl")

IMPORTER = "trl"
OUTCOME_GLOB = "outcomes-rank*.jsonl"
_RANK_FILE = re.compile(r"outcomes-rank(\d+)\.jsonl$")
_STEP_FILE = re.compile(r"completions_(\d+)\.parquet$")
_TRL_NON_REWARD = ("step", "prompt", "completion", "advantage")
_SHOW = 5  # items named in a warning before "..."


# -- text of TRL prompts and completions ------------------------------------------------------------


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple, np.ndarray)):  # content blocks: keep the text ones
        parts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def prompt_text(prompt: Any) -> str | None:
    """The text a TRL prompt is matched by: itself, or for chat messages the last message's content.

    That is the rule `curator ingest` uses for conversational datasets (the
    last message is the problem), so a chat prompt matches its example.
    """
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple, np.ndarray)) and len(prompt) and isinstance(prompt[-1], dict):
        return _content_text(prompt[-1].get("content"))
    return None


def completion_text(completion: Any) -> str | None:
    """A completion as text: itself, or the contents of its chat messages joined by newlines."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple, np.ndarray)):
        texts = [_content_text(m.get("content")) for m in completion if isinstance(m, dict)]
        return "\n".join(t for t in texts if t is not None)
    return None


def _show(items) -> str:
    items = [str(x) for x in items]
    return ", ".join(items[:_SHOW]) + (f", ... ({len(items)} in all)" if len(items) > _SHOW else "")


# -- recording while TRL trains ---------------------------------------------------------------------


class _Sink:
    """One append-mode file shared by every wrapper of this process that writes to it."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # A run killed mid-write leaves a line without its newline: end it, so that the next line stands alone.
        ragged = False
        if path.exists() and path.stat().st_size > 0:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                ragged = f.read(1) != b"\n"
        self.file = open(path, "a", encoding="utf-8", buffering=1)
        if ragged:
            self.file.write("\n")

    def write(self, text: str) -> None:
        with self.lock:
            self.file.write(text)
            self.file.flush()

    def flush(self) -> None:
        with self.lock:
            if not self.file.closed:
                self.file.flush()

    def close(self) -> None:
        with self.lock:
            self.file.close()


_SINKS: dict[str, _Sink] = {}
_SINKS_LOCK = threading.Lock()
# Per out_dir, set by CuratorCallback: "train" inside a training step, "eval" outside one. Absent: unknown.
_PHASE: dict[str, str] = {}


def _key(out_dir: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(out_dir))


def _sink(path: Path) -> _Sink:
    k = _key(path)
    with _SINKS_LOCK:
        s = _SINKS.get(k)
        if s is None or s.file.closed:
            s = _SINKS[k] = _Sink(path)
        return s


def flush_outcomes(out_dir: str | os.PathLike | None = None) -> None:
    """Flush the outcome files this process writes (those under `out_dir`, or all)."""
    root = _key(out_dir) if out_dir is not None else None
    with _SINKS_LOCK:
        sinks = list(_SINKS.items())
    for k, s in sinks:
        if root is None or os.path.dirname(k) == root:
            s.flush()


def close_outcomes(out_dir: str | os.PathLike | None = None) -> None:
    """Close the outcome files this process writes (a later call of the wrapper reopens them)."""
    root = _key(out_dir) if out_dir is not None else None
    with _SINKS_LOCK:
        for k in [k for k in _SINKS if root is None or os.path.dirname(k) == root]:
            _SINKS.pop(k).close()


def _rank() -> int:
    """This process's global rank: torch.distributed when initialized, else $RANK, else 0."""
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except Exception:  # noqa: BLE001 - a rank lookup must never break training
        pass
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _callable_name(func: Callable) -> str:
    """The name TRL shows for a reward function (its `get_callable_name`)."""
    inner = func
    while isinstance(inner, functools.partial):
        inner = inner.func
    return getattr(inner, "__name__", type(inner).__name__)


def _is_async(func: Callable) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))


def _float_or_none(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _id_or_none(x: Any) -> str | None:
    if x is None or isinstance(x, (dict, list)):
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    s = str(x)
    return s or None


class _Recorder:
    """Turns one reward call into JSON lines; never raises into the training loop."""

    def __init__(self, name: str, out_dir: Path, id_column: str | None, run_name: str | None,
                 threshold: float, keep_completions: bool, keep_prompts: bool):
        self.name = name
        self.out_dir = out_dir
        self.key = _key(out_dir)
        self.id_column = id_column
        self.run_name = run_name
        self.threshold = threshold
        self.keep_completions = keep_completions
        self.keep_prompts = keep_prompts
        # Start time first, fixed width: sessions sort in the order they started.
        self.session = f"{time.time():017.6f}-{os.getpid()}"
        self.calls = 0
        self.rank: int | None = None
        self.failed = False

    def __call__(self, prompts, completions, completion_ids, kwargs: dict, rewards) -> None:
        try:
            self._record(prompts, completions, completion_ids, kwargs, rewards)
        except Exception:  # noqa: BLE001 - recording must not kill a training run
            if not self.failed:
                log.exception("curator: could not record the outcomes of reward function %r; training goes on, "
                              "but %s will miss these records", self.name, self.out_dir)
            self.failed = True
        finally:
            self.calls += 1

    def _record(self, prompts, completions, completion_ids, kwargs: dict, rewards) -> None:
        if self.rank is None:
            self.rank = _rank()
        state = kwargs.get("trainer_state")
        step = getattr(state, "global_step", None)
        base = {
            "run": self.run_name, "session": self.session, "func": self.name, "rank": self.rank,
            "step": int(step) if step is not None else self.calls,
            "step_from": "trainer_state" if step is not None else "call_count",
            "phase": _PHASE.get(self.key),
        }
        ids = kwargs.get(self.id_column) if self.id_column else None
        lines = []
        for i, reward in enumerate(rewards):
            r = _float_or_none(reward)
            ex = _id_or_none(ids[i]) if ids is not None and i < len(ids) else None
            row = dict(base)
            row["i"] = i
            row["example_id"] = ex
            row["prompt"] = prompt_text(prompts[i]) if (ex is None or self.keep_prompts) and prompts is not None \
                and i < len(prompts) else None
            row["reward"] = r
            row["correct"] = None if r is None else r > self.threshold
            row["length"] = len(completion_ids[i]) if completion_ids is not None and i < len(completion_ids) \
                else None
            if self.keep_completions and completions is not None and i < len(completions):
                row["completion"] = completion_text(completions[i])
            lines.append(json.dumps(row, ensure_ascii=False))
        if lines:
            _sink(self.out_dir / f"outcomes-rank{self.rank}.jsonl").write("\n".join(lines) + "\n")


def record_outcomes(reward_func: Callable, out_dir: str | os.PathLike, *, id_column: str | None = "example_id",
                    run_name: str | None = None, correct_threshold: float = 0.5, keep_completions: bool = False,
                    keep_prompts: bool = False) -> Callable:
    """Wrap a TRL reward function so that every scored completion is also written down for curator.

    The returned function has TRL's reward signature, calls `reward_func` with
    exactly what it was given, and returns its result unchanged (the same
    list; `None` entries included). For each completion it appends one JSON
    line to `out_dir/outcomes-rank{rank}.jsonl` (rank: torch.distributed's
    when initialized, else $RANK, else 0), one write and flush per call:

        run, session, func, rank, step, step_from, phase, i,
        example_id, prompt, reward, correct, length[, completion]

    `step` is `trainer_state.global_step` (TRL passes the trainer state); with
    no `trainer_state` it is the wrapper's call count and `step_from` says
    `call_count`. `example_id` is the `id_column` dataset column (TRL passes
    dataset columns as keyword lists); when it is absent the prompt text is
    recorded instead, for matching by prompt (`keep_prompts` records it
    always). `correct` is `reward > correct_threshold`, None when the reward
    is None or NaN. `length` is `len(completion_ids[i])` (tokens) when TRL
    passes the ids. `phase` is "train" or "eval" when a `CuratorCallback`
    with the same `out_dir` watches the trainer, else None.

    The wrapper keeps `reward_func`'s name (TRL logs rewards under it) and is
    async when `reward_func` is. A failure to record is logged once and never
    reaches the training loop.
    """
    name = _callable_name(reward_func)
    rec = _Recorder(name, Path(out_dir), id_column, run_name, correct_threshold, keep_completions, keep_prompts)

    if _is_async(reward_func):
        async def wrapper(prompts=None, completions=None, completion_ids=None, **kwargs):
            rewards = await reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids,
                                        **kwargs)
            rec(prompts, completions, completion_ids, kwargs, rewards)
            return rewards
    else:
        def wrapper(prompts=None, completions=None, completion_ids=None, **kwargs):
            rewards = reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
            rec(prompts, completions, completion_ids, kwargs, rewards)
            return rewards

    if inspect.isfunction(reward_func) or inspect.ismethod(reward_func):
        functools.update_wrapper(wrapper, reward_func)
    wrapper.__name__ = name
    wrapper.__qualname__ = name
    wrapper.out_dir = Path(out_dir)
    wrapper.recorder = rec
    wrapper.flush = lambda: flush_outcomes(out_dir)
    return wrapper


# -- reading the outcome files ----------------------------------------------------------------------


def _pick(values: pd.Series, wanted: str | None, what: str, option: str) -> str | None:
    """The one run name / reward function the records are read for."""
    present = sorted({v for v in values if v is not None and not pd.isna(v)}, key=str)
    has_none = values.isna().any()
    if wanted is not None:
        if wanted not in present:
            raise CuratorError(f"no records of {what} {wanted!r}; the files hold {_show(present) or 'none named'}")
        return wanted
    if len(present) + bool(has_none and present) > 1:
        names = present + (["(unnamed)"] if has_none else [])
        raise CuratorError(f"the outcome files hold several {what}s ({_show(names)}); choose one with {option}")
    return present[0] if present else None


def read_outcome_files(out_dir: str | os.PathLike, *, run_name: str | None = None,
                       reward_func: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Outcome records (records.py's table) from every `outcomes-rank*.jsonl` under `out_dir`, and warnings.

    A line that is not valid JSON is skipped with a warning naming the file and
    line (the last line of a run killed mid-write is the usual one). Records of
    evaluation (`phase` "eval"), records without a reward, and records of an
    earlier session from the step at which a later session on the same rank
    started (a run resumed from a checkpoint) are left out, each with a warning. When the files hold several run names or reward
    functions, `run_name` / `reward_func` chooses one.
    """
    root = Path(out_dir)
    files = sorted((p for p in root.glob(OUTCOME_GLOB) if _RANK_FILE.search(p.name)),
                   key=lambda p: int(_RANK_FILE.search(p.name).group(1))) if root.is_dir() else []
    if not files:
        raise CuratorError(f"no {OUTCOME_GLOB} files in {root}: pass the out_dir given to record_outcomes")
    flush_outcomes(root)
    warnings: list[str] = []
    rows: list[dict] = []
    for path in files:
        data = path.read_bytes()
        lines = data.split(b"\n")
        complete = data.endswith(b"\n")
        for n, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            last = n == len(lines) or (n == len(lines) - 1 and complete)
            try:
                row = json.loads(raw)
            except ValueError:
                row = None
            if not isinstance(row, dict) or "step" not in row:
                why = ("truncated (the run stopped while writing it)" if last and not complete
                       else "not a JSON outcome record")
                warnings.append(f"{path.name} line {n}: {why}; skipped")
                continue
            rows.append(row)
    if not rows:
        raise CuratorError(f"no outcome records in {root} ({len(files)} file(s))")
    df = pd.DataFrame(rows)
    for col in ("run", "session", "func", "rank", "step_from", "phase", "example_id", "prompt", "reward",
                "correct", "length", "completion"):
        if col not in df:
            df[col] = None
    df = df.astype({"run": object, "func": object})
    df["run"] = df["run"].where(df["run"].notna(), None)
    df["func"] = df["func"].where(df["func"].notna(), None)

    run = _pick(df["run"], run_name, "run name", "run_name (--run-name)")
    df = df[df["run"].isna()] if run is None else df[df["run"] == run]
    func = _pick(df["func"], reward_func, "reward function", "reward_func (--reward-func)")
    df = df[df["func"].isna()] if func is None else df[df["func"] == func]

    # A run resumed from a checkpoint at step k starts a new session at step k: on each rank, an earlier
    # session's records from step k on belong to the abandoned trajectory.
    df = df.assign(session=df["session"].fillna(""), rank=df["rank"].fillna(-1).astype("int64"),
                   step=df["step"].astype("int64"))
    first = df.groupby(["rank", "session"])["step"].min()
    cutoff: dict[tuple[int, str], float] = {}
    for rank, sessions in first.groupby(level="rank"):
        later = math.inf
        for (_, session), start in sorted(sessions.items(), key=lambda kv: kv[0][1], reverse=True):
            cutoff[(rank, session)] = later
            later = min(later, start)
    stale = df["step"] >= [cutoff[k] for k in zip(df["rank"], df["session"])]
    if stale.any():
        steps = sorted(df.loc[stale, "step"].unique())
        warnings.append(f"{int(stale.sum())} records of steps {_show(steps)} were superseded by a later session "
                        "that started again at or before them (a resumed run): kept the later session's records")
        df = df[~stale]
    evals = df["phase"] == "eval"
    if evals.any():
        warnings.append(f"{int(evals.sum())} records were scored outside training steps (evaluation) and are not "
                        "training history: left out")
        df = df[~evals]
    no_reward = df["correct"].isna()
    if no_reward.any():
        warnings.append(f"{int(no_reward.sum())} completions have no reward (the reward function returned None "
                        "or NaN: not applicable to them) and are not counted")
        df = df[~no_reward]
    if (df["step_from"] == "call_count").any():
        warnings.append("the trainer passed no trainer_state, so steps are counts of reward-function calls, "
                        "not optimizer steps")
    records = records_frame(df[["step", "example_id", "prompt", "correct", "reward", "length", "rank",
                                "completion"]].to_dict("records"))
    return records, warnings


def outcomes_fingerprint(out_dir: str | os.PathLike, run_name: str | None = None,
                         reward_func: str | None = None) -> str:
    """What names an outcomes import: the same folder, run and function import as the same run."""
    return f"outcomes:{_key(out_dir)}:{run_name or ''}:{reward_func or ''}"


def outcomes_run_id(out_dir: str | os.PathLike, run_name: str | None = None, reward_func: str | None = None) -> str:
    """The run id an import of these outcome files gets (unless one is given)."""
    return source_run_id(IMPORTER, outcomes_fingerprint(out_dir, run_name, reward_func))


def import_outcomes(ws: Workspace, out_dir: str | os.PathLike, *, run_name: str | None = None,
                    reward_func: str | None = None, run_id: str | None = None, model: str | None = None,
                    config: dict | None = None, keep_completions: bool = False, initial_probe: str | None = None,
                    final_probe: str | None = None) -> ImportSummary:
    """Read `record_outcomes` files and write them as one `import` run (backend `trl`); with the probe runs
    of the initial model and the final checkpoint, `curator label` can label it."""
    records, warnings = read_outcome_files(out_dir, run_name=run_name, reward_func=reward_func)
    return import_records(
        ws, records, importer=IMPORTER, source=str(Path(out_dir)), run_id=run_id, model=model,
        fingerprint=outcomes_fingerprint(out_dir, run_name, reward_func), warnings=warnings,
        config={"format": "trl-outcomes", "run_name": run_name, "reward_func": reward_func} | (config or {}),
        keep_completions=keep_completions, initial_probe=initial_probe, final_probe=final_probe)


# -- the callback -----------------------------------------------------------------------------------

_TRL_ARGS = ("num_generations", "per_device_train_batch_size", "gradient_accumulation_steps",
             "steps_per_generation", "generation_batch_size", "max_completion_length", "temperature",
             "learning_rate", "beta", "loss_type", "scale_rewards", "max_steps", "seed", "use_vllm",
             "output_dir", "run_name")


def _make_callback_class():
    from transformers import TrainerCallback

    class CuratorCallback(TrainerCallback):
        """Tags reward calls as training or evaluation, flushes, and imports the run at train end.

        `workspace_path` is the curator workspace (its examples must be
        ingested already); `out_dir` the folder given to `record_outcomes`.
        At `on_train_end`, on the main process only, every rank's file is
        read (`read_outcome_files`) and imported as one run (`import_outcomes`),
        `run_id` and `model` naming it (model default: the trained model's
        `name_or_path`). A failed import is logged with the command that
        retries it and kept in `.error`; it does not fail the training run
        unless `strict`. The summary is in `.summary`.
        """

        def __init__(self, workspace_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                     run_id: str | None = None, model: str | None = None, run_name: str | None = None,
                     reward_func: str | None = None, keep_completions: bool = False, strict: bool = False):
            self.workspace_path = Path(workspace_path)
            self.out_dir = Path(out_dir)
            self.run_id = run_id
            self.model = model
            self.run_name = run_name
            self.reward_func = reward_func
            self.keep_completions = keep_completions
            self.strict = strict
            self.summary: ImportSummary | None = None
            self.error: BaseException | None = None
            self._key = _key(out_dir)

        def on_train_begin(self, args, state, control, **kwargs):
            _PHASE[self._key] = "eval"  # until a step begins, a reward call is not training

        def on_step_begin(self, args, state, control, **kwargs):
            _PHASE[self._key] = "train"

        def on_step_end(self, args, state, control, **kwargs):
            _PHASE[self._key] = "eval"
            flush_outcomes(self.out_dir)

        def on_save(self, args, state, control, **kwargs):
            flush_outcomes(self.out_dir)

        def on_train_end(self, args, state, control, **kwargs):
            _PHASE[self._key] = "eval"
            flush_outcomes(self.out_dir)
            if not state.is_world_process_zero:
                return
            model = self.model
            if model is None and kwargs.get("model") is not None:
                model = getattr(kwargs["model"], "name_or_path", None) or None
            trl_args = {k: getattr(args, k) for k in _TRL_ARGS if hasattr(args, k)}
            try:
                with Workspace(self.workspace_path) as ws:
                    self.summary = import_outcomes(
                        ws, self.out_dir, run_name=self.run_name, reward_func=self.reward_func, run_id=self.run_id,
                        model=model, keep_completions=self.keep_completions,
                        config={"trl_args": trl_args, "global_step": state.global_step})
                log.info("curator: imported %d history rows of %s into %s", self.summary.n_rows,
                         self.summary.run_id, self.workspace_path)
            except Exception as e:  # noqa: BLE001 - training is done; say how to import later
                self.error = e
                log.error("curator: importing %s into %s failed (%s); the records stay there, import them with "
                          "`curator -w %s import --format trl-outcomes %s`", self.out_dir, self.workspace_path, e,
                          self.workspace_path, self.out_dir)
                if self.strict:
                    raise

    return CuratorCallback


def __getattr__(name: str):
    # transformers is imported only when the callback is asked for, so the readers stay light for the CLI.
    if name == "CuratorCallback":
        cls = _make_callback_class()
        globals()["CuratorCallback"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- TRL's completion logs (log_completions=True) -----------------------------------------------------


def _completion_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CuratorError(f"{path} does not exist")
    for folder in (path, path / "completions"):
        files = sorted(folder.glob("*.parquet"))
        if files:
            return files
    raise CuratorError(f"no .parquet files in {path} or {path / 'completions'}: TRL writes them to "
                       "<output_dir>/completions/ when GRPOConfig(log_completions=True)")


def _eval_steps(files: list[Path]) -> tuple[set[int], str | None]:
    """Steps at which the trainer evaluated, from the newest trainer_state.json near the files."""
    folder = files[0].parent
    roots = [folder, folder.parent] if folder.name == "completions" else [folder]
    states = []
    for root in roots:
        states += [root / "trainer_state.json", *root.glob("checkpoint-*/trainer_state.json")]
    best, best_step = None, -1
    for p in states:
        try:
            state = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if int(state.get("global_step") or 0) > best_step:
            best, best_step = (p, state), int(state.get("global_step") or 0)
    if best is None:
        return set(), None
    steps = {int(e["step"]) for e in best[1].get("log_history", [])
             if isinstance(e, dict) and "step" in e and any(str(k).startswith("eval_") for k in e)}
    return steps, str(best[0])


def read_trl_completions(path: str | os.PathLike, *, reward_column: str | None = None, threshold: float = 0.5,
                         num_generations: int | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Outcome records from TRL's `completions_{step:05d}.parquet` logs (a folder, its parent, or one file).

    `correct` is `reward > threshold` on `reward_column` (default: the only
    reward column; with several, name one). A row's step is the file's
    `step` - 1, the step its batch was sampled at (TRL logs after the
    optimizer step). There is no example id (rows carry the prompt, matched
    by text), no token length (NaN) and no rank (-1). See the module
    docstring for what these logs leave out; each such gap found is a warning.
    """
    files = _completion_files(Path(path))
    warnings: list[str] = []
    frames: list[tuple[int, Path, pd.DataFrame]] = []
    for f in files:
        try:
            df = pd.read_parquet(f)
        except Exception as e:  # noqa: BLE001 - a torn file names itself and the rest still import
            warnings.append(f"{f.name}: unreadable ({type(e).__name__}: {e}); skipped")
            continue
        missing = [c for c in ("step", "prompt", "completion") if c not in df.columns]
        if missing:
            raise CuratorError(f"{f} lacks the column(s) {missing}; TRL's completion logs have step, prompt, "
                               "completion, one column per reward function and advantage")
        if df.empty:
            continue
        steps = set(df["step"].astype("int64"))
        m = _STEP_FILE.search(f.name)
        step = int(m.group(1)) if m else min(steps)
        if len(steps) > 1:
            warnings.append(f"{f.name}: rows of several steps ({_show(sorted(steps))}); read as step {step}")
        frames.append((step, f, df))
    if not frames:
        raise CuratorError(f"no completion rows in {path}")
    frames.sort(key=lambda t: t[0])

    candidates = sorted({c for _, _, df in frames for c in df.columns
                         if c not in _TRL_NON_REWARD and pd.api.types.is_numeric_dtype(df[c])
                         and not pd.api.types.is_bool_dtype(df[c])})
    if reward_column is None:
        if len(candidates) != 1:
            raise CuratorError(
                f"{'no reward column' if not candidates else 'several reward columns'} in {path}"
                f"{': ' + ', '.join(candidates) if candidates else ''}; choose one with reward_column "
                "(--reward-column)")
        reward_column = candidates[0]
    elif not any(reward_column in df.columns for _, _, df in frames):
        raise CuratorError(f"no column {reward_column!r} in {path}; reward columns: {', '.join(candidates) or 'none'}")

    evals, state_file = _eval_steps([f for _, f, _ in frames])
    rows: list[dict] = []
    previous: tuple | None = None
    skipped_eval, repeated, no_col = [], [], []
    for step, f, df in frames:
        if step == 0 or step in evals:
            skipped_eval.append(step)
            previous = None
            continue
        if reward_column not in df.columns:
            no_col.append(f.name)
            continue
        prompts = [prompt_text(p) for p in df["prompt"]]
        comps = [completion_text(c) for c in df["completion"]]
        rewards = df[reward_column].astype("float64").tolist()
        signature = (tuple(prompts), tuple(comps), tuple(np.nan_to_num(rewards, nan=-1e300)))
        if signature == previous:
            repeated.append(step)
            continue
        previous = signature
        for p, c, r in zip(prompts, comps, rewards):
            ok = not math.isnan(r)
            rows.append({"step": step - 1, "logged_step": step, "prompt": p, "completion": c,
                         "reward": r, "correct": (r > threshold) if ok else None})
    if skipped_eval:
        why = f"evaluation steps in {state_file}" if evals else "step 0 is logged only by an evaluation"
        warnings.append(f"files of steps {_show(skipped_eval)} skipped: TRL writes evaluation completions to the "
                        f"same file name as the training log of that step ({why})")
    if repeated:
        warnings.append(f"files of steps {_show(repeated)} repeat the batch of the file before them (TRL logs its "
                        "latest generation batch at every logging step; steps_per_generation > logging_steps): "
                        "kept once")
    if no_col:
        warnings.append(f"{_show(no_col)} lack the column {reward_column!r}; skipped")
    df = pd.DataFrame(rows)
    if df.empty:
        raise CuratorError(f"no training completions in {path} after skipping evaluation and repeated files")
    logged = sorted(df["logged_step"].unique())
    span = logged[-1] - logged[0] + 1
    if len(logged) < span:
        warnings.append(f"only {len(logged)} of the {span} steps from {logged[0] - 1} to {logged[-1] - 1} have "
                        "logged completions: TRL writes just the latest generation batch at each logging step "
                        "(logging_steps > 1), so the other steps read as 'not drawn'")
    sizes = df.groupby(["step", df["prompt"].map(lambda p: normalize(p) if p else "")]).size()
    g = num_generations or (int(Counter(sizes.tolist()).most_common(1)[0][0]) if len(sizes) else None)
    if g:
        partial = sizes[sizes % g != 0]
        if len(partial):
            steps = sorted({s for s, _ in partial.index})
            warnings.append(f"{len(partial)} of {len(sizes)} (step, prompt) groups have a number of completions that "
                            f"is not a multiple of num_generations={g} (steps {_show(steps)}): their counts are "
                            "partial, the log holds only part of those groups")
    no_reward = df["correct"].isna()
    if no_reward.any():
        warnings.append(f"{int(no_reward.sum())} rows have no {reward_column!r} reward (NaN: the function returned "
                        "None) and are not counted")
        df = df[~no_reward]
    if df["prompt"].isna().any():
        warnings.append(f"{int(df['prompt'].isna().sum())} rows have a prompt with no text and cannot be matched")

    warnings.append("TRL's completion logs carry no example id: rows are matched to examples by prompt text; "
                    "no token lengths are logged (mean_length stays empty)")
    records = records_frame(df.drop(columns=["logged_step"]).to_dict("records"))
    return records, warnings


def completions_fingerprint(path: str | os.PathLike, reward_column: str | None = None) -> str:
    return f"completions:{_key(path)}:{reward_column or ''}"


def import_completions(ws: Workspace, path: str | os.PathLike, *, reward_column: str | None = None,
                       threshold: float = 0.5, num_generations: int | None = None, run_id: str | None = None,
                       model: str | None = None, keep_completions: bool = False, initial_probe: str | None = None,
                       final_probe: str | None = None) -> ImportSummary:
    """Read TRL's completion logs and write them as one `import` run (backend `trl`)."""
    records, warnings = read_trl_completions(path, reward_column=reward_column, threshold=threshold,
                                             num_generations=num_generations)
    return import_records(
        ws, records, importer=IMPORTER, source=str(Path(path)), run_id=run_id, model=model,
        fingerprint=completions_fingerprint(path, reward_column), warnings=warnings,
        config={"format": "trl-completions", "reward_column": reward_column, "threshold": threshold,
                "num_generations": num_generations}, keep_completions=keep_completions,
        initial_probe=initial_probe, final_probe=final_probe)


__all__ = [
    "CuratorCallback", "completion_text", "completions_fingerprint", "close_outcomes", "flush_outcomes",
    "import_completions", "import_outcomes", "outcomes_fingerprint", "outcomes_run_id", "prompt_text",
    "read_outcome_files", "read_trl_completions", "record_outcomes",
]
