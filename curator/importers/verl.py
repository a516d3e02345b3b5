"""verl rollout dumps (`trainer.rollout_data_dir`) -> outcome records.

    records, warnings = read_verl_dumps("rollouts/", index_key="index")

What verl writes, as checked in volcengine/verl `verl/trainer/ppo/ray_trainer.py`
(`RayPPOTrainer._dump_generations` and its two callers, commit
00401103a8c8900774aba04b910de5b0af930b99, and the same function at later
commits that moved the train-side call into `_log_rollout_data`):

- one file per step, `{global_steps}.jsonl`, one JSON object per completion;
- `input`: the prompt token ids decoded with `skip_special_tokens=True`, so the
  chat template's text is there (e.g. `system ... user <problem> assistant`)
  but its special tokens and the padding are not;
- `output`: the completion, decoded the same way;
- `gts`: `reward_model.ground_truth` of the row; `score`: the summed
  token-level score (the reward before any KL penalty); `step`: global_steps;
- then every key of `reward_extra_info` that has one value per row: the keys
  of the dict a custom `compute_score` returns (`acc` and `pred` for verl's
  own math scorers, `index` if yours returns one), plus `request_id` in the
  versions that add it. No `uid` is written by the versions checked (it lives
  in the batch, not the dump); a fork that writes one is read and ignored.
- Validation generations go through the same function into
  `trainer.validation_data_dir`, with `reward` (= score) added to every line;
  the validation before training is dumped as step 0, while training steps
  start at 1.

Mapping rows to examples: by `index_key` when given (a key your
`compute_score` returns, holding the id the workspace knows the example by,
e.g. `extra_info["index"]` for data ingested with `--id-field
extra_info.index`), else by prompt text. Because `input` carries the chat
template, `resolve_prompts` (curator/importers/plain.py) matches a workspace
prompt that equals the input after normalization, or after stripping
`prompt_template`, or that is the one workspace prompt contained in it;
inputs containing several are reported as ambiguous. Rows without the index
key fall back to the prompt. Matching by prompt needs the workspace's
examples: pass `examples` (the CLI does).

correct = `correct_key`'s value when given, else `acc` when the row has it
(bool, or a number > 0.5), else score > `threshold`. Lengths are unknown
(the dump has text, not token counts) unless a row has `response_length`.

What the dump cannot say, the import does not invent: a prompt absent from a
step (filtered by dynamic sampling before the update, or never drawn) has no
row for that step. When some steps hold fewer distinct prompts than the
median step, a warning says so. Files that look like validation dumps (step
0, or `reward` equal to `score` on every line) are skipped with a warning
unless `include_validation`. Bad lines (invalid JSON, missing `input` /
`output` / `score`, a non-numeric score) are skipped and named, file and
line, in a warning; they never stop the import.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd

from curator.data.ids import normalize
from curator.errors import CuratorError
from curator.importers.plain import (
    BadRows, as_correct, as_number, as_step, file_signature, id_text, list_files, resolve_prompts,
)
from curator.importers.records import records_frame

REQUIRED = ("input", "output")  # and a score, or acc / the correct key
LENGTH_KEYS = ("response_length", "response_len")


def read_verl_dumps(path: str | Path, *, index_key: str | None = None, correct_key: str | None = None,
                    threshold: float = 0.5, prompt_template: str | None = None, include_validation: bool = False,
                    examples: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read a verl `rollout_data_dir` (or one of its files) into outcome records and warnings.

    `examples` (columns example_id, prompt; the workspace's examples) lets
    templated inputs be matched by containment; without it only inputs that
    equal a workspace prompt (or do after stripping `prompt_template`, which
    then also needs `examples`) can match later in `import_records`.
    """
    files = list_files(path, suffixes=(".jsonl",))
    bad = BadRows("lines")
    warnings: list[str] = []
    skipped_val: list[str] = []
    rows: list[dict] = []
    missing_index = missing_correct = 0
    used_acc = used_score = 0
    read_files: list[Path] = []
    for f in files:
        parsed = _read_file(f, bad)
        if not parsed:
            continue
        if not include_validation and _looks_like_validation(f, parsed):
            skipped_val.append(f.name)
            continue
        read_files.append(f)
        for line, r in parsed:
            step = as_step(r.get("step"))
            if step is None:
                step = int(f.stem) if f.stem.isdigit() else None
            if step is None:
                bad.add(f, line, "no integer 'step' (and the file name is not a step number)")
                continue
            score = as_number(r.get("score"))
            correct = None
            if correct_key is not None:
                correct = as_correct(r.get(correct_key))
                if correct is None:
                    missing_correct += 1
            if correct is None and "acc" in r:
                correct = as_correct(r.get("acc"))
                used_acc += correct is not None
            if correct is None and score is not None:
                correct = score > threshold
                used_score += 1
            if correct is None:
                bad.add(f, line, "missing score" if "score" not in r else f"score {r['score']!r} is not a number")
                continue
            eid = None
            if index_key is not None:
                eid = id_text(r.get(index_key))
                if eid is None:
                    missing_index += 1
            length = next((as_number(r[k]) for k in LENGTH_KEYS if k in r), None)
            rows.append({"step": step, "example_id": eid, "prompt": r["input"], "correct": bool(correct),
                         "reward": np.nan if score is None else score, "length": np.nan if length is None else length,
                         "rank": -1, "completion": r["output"]})

    if skipped_val:
        if not read_files:
            raise CuratorError(
                f"every file in {path} looks like verl validation output (step 0, or a 'reward' key equal to "
                "'score' on every line, which verl's _validate adds): this is trainer.validation_data_dir, not "
                "trainer.rollout_data_dir; import the rollout folder, or pass --include-validation to import "
                "these as training rows")
        warnings.append(
            f"skipped {len(skipped_val)} file(s) that look like validation dumps ({', '.join(skipped_val[:5])}"
            + (", ..." if len(skipped_val) > 5 else "") + "): step 0 or 'reward' equal to 'score' on every line; "
            "validation samples are not training draws (pass --include-validation to import them anyway)")
    if bad.n:
        warnings.append(bad.warning())
    if index_key is not None and missing_index:
        warnings.append(f"{missing_index} of {len(rows)} rows have no {index_key!r} key (or an empty one); "
                        "they were matched by prompt text instead")
    if correct_key is not None and missing_correct:
        warnings.append(f"{missing_correct} rows have no usable {correct_key!r}; their verdict came from acc or "
                        f"score > {threshold}")

    records = records_frame(rows)
    warnings += dynamic_sampling_warnings(records)
    mapping = {
        "example_id": f"{index_key} (reward extra info)" if index_key else None,
        "prompt": "input" + (" (chat template stripped)" if prompt_template or examples is not None else ""),
        "correct": correct_key or ("acc" if used_acc and not used_score else
                                   f"acc, else score > {threshold}" if used_acc else f"score > {threshold}"),
        "reward": "score", "completion": "output", "step": "step",
    }
    if examples is not None or prompt_template:
        if examples is None:
            raise CuratorError("prompt_template needs the workspace's examples to match against (pass examples=)")
        records, more = resolve_prompts(records, examples, prompt_template=prompt_template)
        warnings += more
    records.attrs["mapping"] = mapping
    records.attrs["files"] = [str(f) for f in read_files]
    records.attrs["file_signature"] = file_signature(read_files)
    return records, warnings


def _read_file(f: Path, bad: BadRows) -> list[tuple[int, dict]]:
    """(line number, row) for every usable line of one dump file; bad lines go to `bad`."""
    out = []
    data = f.read_bytes()
    lines = data.split(b"\n")
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            r = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad.add(f, i, "not valid UTF-8")
            continue
        except json.JSONDecodeError as e:
            bad.add(f, i, f"not valid JSON ({e.msg})" + (" (the file looks truncated)" if i >= len(lines) - 1
                                                         else ""))
            continue
        if not isinstance(r, dict):
            bad.add(f, i, f"a JSON {type(r).__name__}, not an object")
            continue
        missing = [k for k in REQUIRED if k not in r]
        if missing:
            bad.add(f, i, f"missing {', '.join(missing)}")
            continue
        if not isinstance(r["input"], str) or not isinstance(r["output"], str):
            bad.add(f, i, "'input' and 'output' must be text")
            continue
        out.append((i, r))
    return out


def _looks_like_validation(f: Path, parsed: list[tuple[int, dict]]) -> bool:
    """Step 0 (verl's validation before training), or verl's `reward` = `score` on every line."""
    steps = {as_step(r.get("step")) for _, r in parsed}
    if steps == {0} or (f.stem == "0" and steps <= {0, None}):
        return True
    return all("reward" in r and as_number(r["reward"]) is not None
               and as_number(r["reward"]) == as_number(r.get("score")) for _, r in parsed)


def dynamic_sampling_warnings(records: pd.DataFrame) -> list[str]:
    """A warning when some steps hold fewer distinct prompts than the median step."""
    if records.empty:
        return []
    key = records["example_id"].where(records["example_id"].notna(),
                                      records["prompt"].map(lambda p: normalize(p) if isinstance(p, str) else None))
    per_step = key.groupby(records["step"]).nunique()
    if len(per_step) < 2:
        return []
    median = statistics.median(per_step.tolist())
    short = per_step[per_step < median]
    if short.empty:
        return []
    med = int(median) if float(median).is_integer() else median
    tail = ("prompts filtered by dynamic sampling or not dumped are unknown for that step, not solved: "
            "no rows were invented for them")
    if len(short) == 1:
        step, n = next(iter(short.items()))
        return [f"step {step} has {n} prompts, the median step has {med}: {tail}"]
    listed = ", ".join(f"step {s} ({n})" for s, n in list(short.items())[:5]) + (", ..." if len(short) > 5 else "")
    return [f"{len(short)} of {len(per_step)} steps have fewer prompts than the median step ({med}): {listed}; "
            + tail.replace("that step", "those steps")]

