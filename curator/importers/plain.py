"""Plain outcome logs (.jsonl / .json / .parquet / .csv, or a folder of them) -> outcome records.

    records, warnings = read_plain("logs/", reward_field="score")

One row of the log is one scored completion. Fields are found by name unless
given (dotted paths such as `extra_info.index` work for given fields):

    step        step, then global_step, train_step, training_step, iteration
    example id  example_id, id, index                  (the workspace id, as text)
    prompt      prompt, query, input, question, problem
    correct     correct, is_correct, acc, accuracy     (bool, 0/1 or "true"/"false")
    reward      reward, score, rewards
    completion  completion, output, response
    length      length, completion_length, response_length, num_tokens, completion_tokens  (tokens)
    rank        rank

A row needs a step, a correct flag or a reward (correct = reward > threshold
when only a reward is logged), and an example id or a prompt. When the log
has no step field, or neither a reward nor a correct field, or neither an id
nor a prompt, `read_plain` raises a CuratorError naming the file and the
fields it does have. A row missing one of the chosen fields, or with a value
that is not a number, is skipped and counted in a warning that names its file
and line; nothing else stops the read. The mapping used is in
`records.attrs["mapping"]` (the CLI prints it).

The outcome files written by `curator.integrations.openrlhf_reward`
(`outcomes-rank{r}-pid{p}.jsonl`) are plain logs: `read_plain(dir,
pattern="outcomes-*.jsonl")` reads them.

`resolve_prompts(records, examples)` is shared with the verl importer: trainers
log the prompt *after* their chat template, so a logged prompt is matched to a
workspace example by (1) normalized equality, else (2) equality after
stripping `prompt_template` (a string holding `{prompt}`), else (3)
containment: the workspace prompts that occur inside the logged text, less
those that occur inside another such prompt; exactly one left is a match,
more than one is ambiguous and reported, none is left to `import_records`,
which counts it as unmatched.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curator.data.fields import get_path
from curator.data.ids import normalize
from curator.errors import CuratorError
from curator.importers.records import records_frame

SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")

STEP_FIELDS = ("step", "global_step", "train_step", "training_step", "iteration")
ID_FIELDS = ("example_id", "id", "index")
PROMPT_FIELDS = ("prompt", "query", "input", "question", "problem")
CORRECT_FIELDS = ("correct", "is_correct", "acc", "accuracy")
REWARD_FIELDS = ("reward", "score", "rewards")
COMPLETION_FIELDS = ("completion", "output", "response")
LENGTH_FIELDS = ("length", "completion_length", "response_length", "num_tokens", "completion_tokens")

MAX_NAMED = 5  # bad rows named in a warning; the rest are counted
_ANCHOR = 16  # characters of a workspace prompt used to find it inside a logged text


# --------------------------------------------------------------------------- files

def list_files(path: str | Path, pattern: str | None = None, suffixes: Iterable[str] = SUFFIXES) -> list[Path]:
    """The files to read: `path` itself, or the matching files directly inside the folder `path`."""
    p = Path(path)
    suffixes = tuple(suffixes)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise CuratorError(f"{path}: no such file or folder")
    files = sorted((f for f in p.iterdir() if f.is_file() and f.suffix in suffixes
                    and (pattern is None or fnmatch.fnmatch(f.name, pattern))), key=_natural)
    if not files:
        what = f"files named {pattern}" if pattern else "/".join(suffixes) + " files"
        raise CuratorError(f"{path} holds no {what}; point curator import at a log file or a folder of them")
    return files


def _natural(p: Path) -> tuple:
    """10.jsonl after 9.jsonl: numeric stems by value, then the rest by name."""
    return (0, int(p.stem), p.name) if p.stem.isdigit() else (1, 0, p.name)


def fingerprint_files(fmt: str, path: str | Path) -> str:
    """What makes two imports the same source: the format and the resolved path.

    A log that grew since the last import (more steps dumped) is the same
    source, so re-importing it replaces the earlier run instead of adding a
    second, overlapping one. `file_signature` records what was read.
    """
    return f"{fmt}\x1f{Path(path).resolve()}"


def file_signature(files: list[Path]) -> list[dict]:
    """Names, sizes and modification times of the files read (stored in the run's config)."""
    out = []
    for f in files:
        st = f.stat()
        out.append({"file": f.name, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def _iter_rows(f: Path):
    """(line or row number, record or None, error) for every row of one file; never raises on a bad row."""
    from curator.data.sources import read_source

    src = read_source(str(f))
    if f.suffix == ".jsonl":
        # read_source numbers the non-empty lines; recover the 1-based line numbers for messages.
        lines = [i + 1 for i, line in enumerate(f.read_bytes().split(b"\n")) if line.strip()]
    else:
        lines = None
    for r in src.rows:
        where = lines[r.row_index] if lines and r.row_index < len(lines) else r.row_index + 1
        yield where, r.record, r.error


class BadRows:
    """Counts skipped rows and names the first few, file and line."""

    def __init__(self, what: str = "rows"):
        self.what = what
        self.n = 0
        self.seen: list[tuple[str, int, str]] = []  # the first 1000, sorted by file and line when reported

    def add(self, f: Path, line: int, reason: str) -> None:
        self.n += 1
        if len(self.seen) < 1000:
            self.seen.append((f.name, line, re.sub(r"^(line|item|row) \d+:? (is )?", "", reason)))

    def warning(self) -> str | None:
        if not self.n:
            return None
        named = [f"{name}:{line}: {reason}" for name, line, reason in sorted(self.seen)[:MAX_NAMED]]
        more = f" (and {self.n - len(named)} more)" if self.n > len(named) else ""
        what = self.what if self.n != 1 else self.what.removesuffix("s")
        return f"{self.n} bad {what} skipped: " + "; ".join(named) + more


# --------------------------------------------------------------------------- values

def id_text(value: Any) -> str | None:
    """An id as workspace text: 7, 7.0 and "7" are all "7"; empty and missing are None."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    return text or None


def as_number(value: Any) -> float | None:
    """A finite float, or None (bools count as 0/1; numeric strings are read)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, str):
        try:
            v = float(value.strip())
        except ValueError:
            return None
        return v if math.isfinite(v) else None
    if isinstance(value, (list, tuple)) and len(value) == 1:  # a reward logged as a one-element list
        return as_number(value[0])
    return None


def as_correct(value: Any) -> bool | None:
    """A correct flag: a bool, 0/1 (anything > 0.5 is correct), or "true"/"false"/"yes"/"no"."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        t = value.strip().lower()
        if t in ("true", "yes", "correct"):
            return True
        if t in ("false", "no", "incorrect"):
            return False
    v = as_number(value)
    return None if v is None else v > 0.5


def as_step(value: Any) -> int | None:
    v = as_number(value)
    if v is None or not float(v).is_integer() or v < 0:
        return None
    return int(v)


# --------------------------------------------------------------------------- plain logs

def read_plain(path: str | Path, *, id_field: str | None = None, prompt_field: str | None = None,
               step_field: str = "step", reward_field: str | None = None, correct_field: str | None = None,
               completion_field: str | None = None, length_field: str | None = None, threshold: float = 0.5,
               pattern: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read a plain outcome log (file or folder) into outcome records; see the module docstring."""
    files = list_files(path, pattern)
    rows: list[tuple[Path, int, dict]] = []
    bad = BadRows()
    for f in files:
        for line, record, error in _iter_rows(f):
            if record is None:
                bad.add(f, line, error or "unreadable row")
            else:
                rows.append((f, line, record))
    if not rows:
        raise CuratorError(f"{path}: no readable rows" + (f" ({bad.warning()})" if bad.n else ""))

    keys: set[str] = set()
    for _, _, r in rows[:500]:
        keys.update(r)
    where = str(files[0]) if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more files in {path})"

    def pick(given: str | None, names: tuple[str, ...], flag: str) -> str | None:
        if given:
            if not any(get_path(r, given)[0] for _, _, r in rows[:500]):
                raise CuratorError(f"{where}: {flag} {given!r} is in none of the first {min(len(rows), 500)} rows; "
                                   f"fields present: {', '.join(sorted(keys))}")
            return given
        return next((n for n in names if n in keys), None)

    if step_field and step_field != "step":  # named by the user: it must be there
        step_col = pick(step_field, (), "--step-field")
    else:
        step_col = pick(None, STEP_FIELDS, "--step-field")
    if step_col is None:
        raise CuratorError(f"{where}: no step field (looked for {', '.join(STEP_FIELDS)}); fields present: "
                           f"{', '.join(sorted(keys))}; pass --step-field NAME")
    correct_col = pick(correct_field, CORRECT_FIELDS, "--correct-field")
    reward_col = pick(reward_field, REWARD_FIELDS, "--reward-field")
    if correct_col is None and reward_col is None:
        raise CuratorError(f"{where}: no reward or correct field (looked for {', '.join(REWARD_FIELDS)} and "
                           f"{', '.join(CORRECT_FIELDS)}); fields present: {', '.join(sorted(keys))}; "
                           "pass --reward-field NAME or --correct-field NAME")
    id_col = pick(id_field, ID_FIELDS, "--id-field")
    prompt_col = pick(prompt_field, PROMPT_FIELDS, "--prompt-field")
    if id_col is None and prompt_col is None:
        raise CuratorError(f"{where}: no example id or prompt field (looked for {', '.join(ID_FIELDS)} and "
                           f"{', '.join(PROMPT_FIELDS)}); fields present: {', '.join(sorted(keys))}; "
                           "pass --id-field NAME or --prompt-field NAME")
    completion_col = pick(completion_field, COMPLETION_FIELDS, "--completion-field")
    length_col = pick(length_field, LENGTH_FIELDS, "--length-field")
    rank_col = "rank" if "rank" in keys else None

    out: list[dict] = []
    for f, line, r in rows:
        step = as_step(get_path(r, step_col)[1])
        if step is None:
            bad.add(f, line, f"no integer step in {step_col!r}")
            continue
        reward = as_number(get_path(r, reward_col)[1]) if reward_col else None
        correct = as_correct(get_path(r, correct_col)[1]) if correct_col else None
        if correct is None and reward is not None:
            correct = reward > threshold
        if correct is None:
            bad.add(f, line, "no reward or correct value in "
                    + " / ".join(repr(c) for c in (reward_col, correct_col) if c))
            continue
        eid = id_text(get_path(r, id_col)[1]) if id_col else None
        prompt = get_path(r, prompt_col)[1] if prompt_col else None
        prompt = prompt if isinstance(prompt, str) and prompt.strip() else None
        if eid is None and prompt is None:
            bad.add(f, line, "neither an example id nor a prompt")
            continue
        completion = get_path(r, completion_col)[1] if completion_col else None
        length = as_number(get_path(r, length_col)[1]) if length_col else None
        rank = as_step(r.get(rank_col)) if rank_col else None
        out.append({"step": step, "example_id": eid, "prompt": prompt, "correct": bool(correct),
                    "reward": np.nan if reward is None else reward,
                    "length": np.nan if length is None else length, "rank": -1 if rank is None else rank,
                    "completion": completion if isinstance(completion, str) else None})
    warnings = [w for w in [bad.warning()] if w]
    records = records_frame(out)
    records.attrs["mapping"] = {
        "step": step_col, "example_id": id_col, "prompt": prompt_col, "correct": correct_col or
        f"{reward_col} > {threshold}", "reward": reward_col, "completion": completion_col, "length": length_col,
    }
    records.attrs["files"] = [str(f) for f in files]
    return records, warnings


def describe_mapping(mapping: dict) -> str:
    """'step <- global_step, correct <- acc, ...' for the summary line."""
    return ", ".join(f"{k} <- {v}" for k, v in mapping.items() if v)


# --------------------------------------------------------------------------- prompts after a chat template

_SPECIAL = re.compile(r"<\|[^|<>]{1,40}\|>|</?s>|\[/?INST\]")


def template_parts(prompt_template: str) -> list[tuple[str, str]]:
    """(prefix, suffix) pairs to strip, normalized: the template as given and without special tokens.

    Trainers often decode with special tokens skipped (verl does), so
    `<|im_start|>user\\n{prompt}<|im_end|>` is also tried as `user {prompt}`.
    """
    if "{prompt}" not in prompt_template:
        raise CuratorError("--prompt-template must contain {prompt} where the problem text goes, e.g. "
                           "'<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n'")
    pre, _, post = prompt_template.partition("{prompt}")
    parts = [(normalize(pre), normalize(post))]
    bare = (normalize(_SPECIAL.sub(" ", pre)), normalize(_SPECIAL.sub(" ", post)))
    if bare not in parts:
        parts.append(bare)
    return parts


def strip_template(text: str, parts: list[tuple[str, str]]) -> str | None:
    """The normalized text inside the template, or None when `text` is not wrapped in it."""
    t = normalize(text)
    for pre, post in parts:
        if t.startswith(pre) and t.endswith(post) and len(t) >= len(pre) + len(post):
            inner = t[len(pre):len(t) - len(post)] if post else t[len(pre):]
            return inner.strip()
    return None


class PromptIndex:
    """Find the workspace prompts that occur inside a logged text (normalized), fast.

    Each prompt is indexed by its first `_ANCHOR` characters; a text is scanned
    once, position by position. Prompts shorter than the anchor are checked
    directly.
    """

    def __init__(self, examples: pd.DataFrame):
        norm = examples.assign(key=examples["prompt"].map(normalize))
        self.ids: dict[str, list[str]] = norm.groupby("key")["example_id"].agg(list).to_dict()
        self.anchors: dict[str, list[str]] = {}
        self.short: list[str] = []
        for key in self.ids:
            if not key:
                continue
            if len(key) < _ANCHOR:
                self.short.append(key)
            else:
                self.anchors.setdefault(key[:_ANCHOR], []).append(key)

    def exact(self, key: str) -> str | None:
        ids = self.ids.get(key)
        return ids[0] if ids and len(ids) == 1 else None

    def contained(self, text: str) -> list[str]:
        """Workspace prompts inside `text`, less those inside another one found."""
        found = {k for k in self.short if k in text}
        anchors = self.anchors
        for i in range(len(text) - _ANCHOR + 1):
            keys = anchors.get(text[i:i + _ANCHOR])
            if keys:
                found.update(k for k in keys if text.startswith(k, i))
        return [k for k in found if not any(k != o and k in o for o in found)]


def resolve_prompts(records: pd.DataFrame, examples: pd.DataFrame, *,
                    prompt_template: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Fill `example_id` for records whose prompt is a workspace prompt wrapped in a chat template.

    Records whose id is already a workspace id, or whose prompt equals a
    workspace prompt, are left to `import_records`. See the module docstring
    for the rule; returns the records and a warning for ambiguous prompts.
    """
    if records.empty or examples.empty:
        return records, []
    known = set(examples["example_id"])
    index = PromptIndex(examples)
    parts = template_parts(prompt_template) if prompt_template else []
    todo = records["prompt"].notna() & ~records["example_id"].isin(known)
    resolved: dict[str, str | None] = {}
    ambiguous: dict[str, int] = {}
    by_rule = {"template": 0, "contained": 0}
    for text in records.loc[todo, "prompt"].unique():
        key = normalize(text)
        if key in index.ids:  # equal after normalization: import_records matches it (or calls it ambiguous)
            resolved[text] = None
            continue
        eid = None
        if parts:
            inner = strip_template(text, parts)
            if inner is not None and index.exact(inner):
                eid = index.exact(inner)
                by_rule["template"] += 1
        if eid is None:
            hits = index.contained(key)
            if len(hits) == 1 and index.exact(hits[0]):
                eid = index.exact(hits[0])
                by_rule["contained"] += 1
            elif len(hits) > 1 or (len(hits) == 1 and len(index.ids[hits[0]]) > 1):
                ambiguous[text] = len(hits) if len(hits) > 1 else len(index.ids[hits[0]])
        resolved[text] = eid
    out = records.copy()
    mask = todo & out["prompt"].map(lambda p: resolved.get(p) is not None)
    out.loc[mask, "example_id"] = out.loc[mask, "prompt"].map(resolved)
    warnings = []
    if ambiguous:
        n_rows = int(out.loc[todo, "prompt"].isin(list(ambiguous)).sum())
        sample = next(iter(ambiguous))
        warnings.append(
            f"{n_rows} records ({len(ambiguous)} distinct prompts) contain more than one workspace prompt, or one "
            f"shared by several examples, and were left unmatched (e.g. {normalize(sample)[:80]!r}); "
            "log an example id (for verl: return it from compute_score and pass --index-key) or pass "
            "--prompt-template")
    records_attrs = dict(records.attrs)
    out.attrs.update(records_attrs)
    out.attrs["prompt_matching"] = by_rule
    return out, warnings
