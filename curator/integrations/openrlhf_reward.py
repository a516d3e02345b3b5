"""A drop-in reward file for OpenRLHF that records every outcome for `curator import --format openrlhf`.

    export CURATOR_OUTCOMES_DIR=/data/run1-outcomes          # where outcome logs go
    export CURATOR_REWARD_FUNC=my_rewards:reward_func         # optional: your own reward (module:function
                                                              # or /path/file.py:function)
    python -m openrlhf.cli.train_ppo_ray ... --remote_rm_url "$(python -c \\
        'import curator.integrations.openrlhf_reward as m; print(m.__file__)')" --label_key answer
    # afterwards
    curator import /data/run1-outcomes --format openrlhf

What OpenRLHF expects, as checked in OpenRLHF/OpenRLHF
`openrlhf/utils/rollout.py` (`SingleTurnRewardedExecutor`, commit
06f132b81e1ee185450e109de5b6cdf2edb06f11) and its example
`examples/python/reward_func.py`: a `--remote_rm_url` ending in `.py` is loaded
with `importlib.util.spec_from_file_location("reward_func", path)` and its
`reward_func(queries, prompts, labels)` is called, in a worker thread
(`asyncio.to_thread`), once per sample with one-element lists: `queries` are
prompt + response decoded with special tokens kept, `prompts` the prompts as
given to the engine (chat template applied when `--apply_chat_template`),
`labels` the `--label_key` values. It reads back a dict: `rewards` (used for
the advantage), `scores` (0-1, used by dynamic filtering; `rewards` when
absent) and `extra_logs` (logged to wandb), each a tensor with one value per
query. Older versions called it with whole micro-batches, and accepted a bare
tensor of rewards; both are handled here. `**kwargs` are accepted and passed on.

The reward: `CURATOR_REWARD_FUNC` when set (called with the same arguments;
whatever it returns is returned unchanged), else curator's verifier
(math-verify in worker processes): 1.0 when the response (the query after
its prompt) verifies against the label, else 0.0. correct = scores (or
rewards) > `CURATOR_THRESHOLD` (default 0.5).

A label may be plain answer text, or a JSON object string carrying the answer
(`answer` / `ground_truth` / `label`) and the example id (`example_id` /
`id` / `index`); an `example_ids` / `ids` / `indices` kwarg also gives ids.
Without an id, `curator import` matches the prompt (chat template included)
to a workspace prompt by containment.

The step: OpenRLHF does not pass one. A `step` / `global_step` /
`training_step` kwarg is used when present; otherwise the step is this
process's call counter divided by `CURATOR_CALLS_PER_STEP` (default 1), so
with the per-sample calls of current OpenRLHF set it to the number of
samples one reward process scores per training step (rollout batch x
samples per prompt / reward processes), or re-bucket later with the `time`
and `call` fields every record carries. Each record says which it used
(`step_source`).

One JSON line per completion goes to
`$CURATOR_OUTCOMES_DIR/outcomes-rank{rank}-pid{pid}.jsonl` (default folder
`./curator-outcomes`; rank from `RANK`, 0 when unset): step, step_source,
call, time, example_id, prompt, label, reward, score, correct,
completion_chars (characters: no tokenizer here), rank, pid, and the
completion itself when `CURATOR_KEEP_COMPLETIONS=1`. Lines are flushed as
written; a failure to record is reported once on stderr and never breaks
training. Importing this file needs neither OpenRLHF nor torch (torch is
imported when a reward is returned).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ANSWER_KEYS = ("answer", "ground_truth", "label", "gold")
ID_KEYS = ("example_id", "id", "index")
STEP_KWARGS = ("step", "global_step", "training_step")
ID_KWARGS = ("example_ids", "ids", "indices")

_lock = threading.Lock()
_state: dict[str, Any] = {"calls": 0, "pid": None, "file": None, "path": None, "warned": False, "user": None}


def reward_func(queries, prompts, labels, **kwargs):
    """OpenRLHF's reward hook: compute (or delegate) rewards, record each outcome, return them."""
    queries = list(queries)
    n = len(queries)
    prompts = (list(prompts) if prompts is not None else [])[:n] + [None] * max(0, n - len(prompts or []))
    labels = (list(labels) if labels is not None else [])[:n] + [None] * max(0, n - len(labels or []))
    answers, label_ids = zip(*(_split_label(x) for x in labels)) if labels else ((), ())
    completions = [_completion(q, p) for q, p in zip(queries, prompts)]

    user = _user_func()
    if user is not None:
        result = user(queries, prompts, labels, **kwargs)
        rewards, scores = _unpack(result)
    else:
        from curator.verify import verify_batch

        outcomes = verify_batch(completions, [a if isinstance(a, str) else "" for a in answers])
        rewards = [o.reward for o in outcomes]
        scores = rewards
        result = None
    threshold = float(os.environ.get("CURATOR_THRESHOLD", "0.5"))
    correct = [s is not None and s > threshold for s in scores]

    with _lock:
        call = _state["calls"]
        _state["calls"] += 1
    steps, source = _steps(kwargs, call, len(queries))
    ids = _kwarg_list(kwargs, ID_KWARGS, len(queries)) or [None] * len(queries)
    now = time.time()
    rank = _rank()
    keep = os.environ.get("CURATOR_KEEP_COMPLETIONS", "") not in ("", "0", "false", "no")
    lines = []
    for i, q in enumerate(queries):
        rec = {
            "step": steps[i], "step_source": source, "call": call, "time": round(now, 3),
            "example_id": _text_id(ids[i]) or label_ids[i], "prompt": prompts[i], "label": answers[i],
            "reward": rewards[i], "score": scores[i], "correct": bool(correct[i]),
            "completion_chars": len(completions[i]), "rank": rank, "pid": os.getpid(),
        }
        if keep:
            rec["completion"] = completions[i]
        lines.append(rec)
    _write(lines)

    if result is not None:
        return result
    import torch

    t = torch.tensor(rewards, dtype=torch.float)
    return {"rewards": t, "scores": t.clone(), "extra_logs": {"curator_correct": torch.tensor(
        [float(c) for c in correct], dtype=torch.float)}}


# --------------------------------------------------------------------------- helpers

def _user_func() -> Callable | None:
    spec = os.environ.get("CURATOR_REWARD_FUNC", "").strip()
    if not spec:
        return None
    cached = _state["user"]
    if cached is not None and cached[0] == spec:
        return cached[1]
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise ValueError(f"CURATOR_REWARD_FUNC={spec!r}: expected module:function or /path/file.py:function")
    if target.endswith(".py"):
        mspec = importlib.util.spec_from_file_location(f"curator_user_reward_{abs(hash(target))}", target)
        if mspec is None or mspec.loader is None:
            raise ValueError(f"CURATOR_REWARD_FUNC: cannot load {target}")
        module = importlib.util.module_from_spec(mspec)
        mspec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    func = getattr(module, name, None)
    if not callable(func):
        raise ValueError(f"CURATOR_REWARD_FUNC={spec!r}: {target} has no function {name!r}")
    _state["user"] = (spec, func)
    return func


def _values(x: Any) -> list[float | None]:
    if x is None:
        return []
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().reshape(-1).tolist()
    elif hasattr(x, "tolist"):
        x = x.tolist()
    if not isinstance(x, (list, tuple)):
        x = [x]
    out = []
    for v in x:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(None)
    return out


def _unpack(result: Any) -> tuple[list, list]:
    """(rewards, scores) from what a reward_func returns: a dict with rewards/scores, or a bare tensor/list."""
    if isinstance(result, dict):
        rewards = _values(result.get("rewards"))
        scores = _values(result.get("scores")) or rewards
        return rewards, scores
    rewards = _values(result)
    return rewards, rewards


def _split_label(label: Any) -> tuple[Any, str | None]:
    """(answer, example id) from a label: plain text, or a JSON object string with both."""
    if isinstance(label, dict):
        obj = label
    elif isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            obj = json.loads(label)
        except json.JSONDecodeError:
            return label, None
        if not isinstance(obj, dict):
            return label, None
    else:
        return label, None
    answer = next((obj[k] for k in ANSWER_KEYS if k in obj), None)
    eid = next((_text_id(obj[k]) for k in ID_KEYS if k in obj and _text_id(obj[k])), None)
    return (str(answer) if answer is not None else None), eid


def _text_id(v: Any) -> str | None:
    if v is None or isinstance(v, (dict, list)):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    text = str(v).strip()
    return text or None


def _completion(query: Any, prompt: Any) -> str:
    """The response: the query after its prompt (OpenRLHF's query is prompt + response)."""
    q = query if isinstance(query, str) else ("" if query is None else str(query))
    if isinstance(prompt, str) and prompt:
        if q.startswith(prompt):
            return q[len(prompt):]
        at = q.rfind(prompt)
        if at >= 0:
            return q[at + len(prompt):]
    return q


def _kwarg_list(kwargs: dict, names: tuple[str, ...], n: int) -> list | None:
    for k in names:
        if k in kwargs and kwargs[k] is not None:
            v = kwargs[k]
            if hasattr(v, "tolist"):
                v = v.tolist()
            if isinstance(v, (list, tuple)):
                return list(v) if len(v) == n else None
            return [v] * n
    return None


def _steps(kwargs: dict, call: int, n: int) -> tuple[list[int], str]:
    given = _kwarg_list(kwargs, STEP_KWARGS, n)
    if given is not None:
        try:
            return [int(s) for s in given], "kwargs"
        except (TypeError, ValueError):
            pass
    try:
        per_step = max(1, int(os.environ.get("CURATOR_CALLS_PER_STEP", "1")))
    except ValueError:
        per_step = 1
    return [call // per_step] * n, "call_counter"


def _rank() -> int:
    for k in ("RANK", "LOCAL_RANK"):
        try:
            return int(os.environ[k])
        except (KeyError, ValueError):
            continue
    return -1


def outcome_path() -> Path:
    folder = Path(os.environ.get("CURATOR_OUTCOMES_DIR") or "curator-outcomes")
    rank = _rank()
    return folder / f"outcomes-rank{max(rank, 0)}-pid{os.getpid()}.jsonl"


def _write(lines: list[dict]) -> None:
    try:
        with _lock:
            path = outcome_path()
            if _state["pid"] != os.getpid() or _state["path"] != path or _state["file"] is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                _state.update(pid=os.getpid(), path=path, file=open(path, "a", encoding="utf-8"))
            fh = _state["file"]
            for rec in lines:
                fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            fh.flush()
    except Exception as e:  # recording must never break training
        if not _state["warned"]:
            _state["warned"] = True
            print(f"curator: could not record reward outcomes ({e}); training continues", file=sys.stderr)
