"""Outcome records from another trainer's run -> `history` rows of an `import` run.

Every importer (TRL, verl, OpenRLHF, plain logs) reads its format into one
table of *outcome records*, one row per scored completion:

    step        int    the trainer's optimizer step the completion was sampled for
    example_id  str    the workspace example (None when only the prompt is known)
    prompt      str    the prompt text (None when the id is known); matched by normalized text
    correct     bool   the verifier's verdict, or reward > `threshold` when only a reward is logged
    reward      float  the reward as logged (NaN when only `correct` is known)
    length      float  completion length (tokens when the trainer says so), NaN when unknown
    rank        int    the data-parallel rank that scored it (-1 when unknown)
    completion  str    the completion text, when logged (None otherwise)

`import_records(ws, records, ...)` matches prompts to examples, aggregates
records per (step, example) into `history` rows (n, n_correct, mean_length;
a group split across ranks is summed back together), registers the run in
`runs` with kind `import` and the importer as its backend, and writes
everything in one transaction. Importing the same source twice replaces the
run's rows instead of adding them. Records that match no example are not
written; they are counted and the summary says so, with a few of their
prompts or ids, so nothing is dropped without a reason.

Labels need pass@1 before and after training, which another trainer's logs
do not hold. Probe the initial model and the final checkpoint with `curator
probe` (any backend) and name the two probe runs (`initial_probe`,
`final_probe`): the import run then points at the first through
`runs.initial_run`, and the second's pass@1 counts are its `evals` at its last
step, exactly what `curator label` reads for a curator-trained run.

What an import cannot know, it does not invent: a prompt absent from a step
(filtered by dynamic sampling, or never drawn) has no row for that step, the
same as "not drawn"; `n_timeout` and `n_error` are 0 (logs record rewards,
not verifier statuses); clip fractions are NULL; `kept` is true (the row's
group was in the trainer's log).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curator.data.ids import normalize
from curator.errors import CuratorError
from curator.store import Workspace, utcnow

RECORD_COLUMNS = ("step", "example_id", "prompt", "correct", "reward", "length", "rank", "completion")


@dataclass
class ImportSummary:
    run_id: str
    importer: str
    source: str
    n_records: int  # outcome records read
    n_matched: int  # records that became part of a history row
    n_rows: int  # history rows written (step x example)
    n_steps: int
    n_examples: int
    unmatched: int  # records whose example id or prompt is not in the workspace
    unmatched_samples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    replaced: bool = False  # an earlier import of the same source was replaced
    mapping: dict = field(default_factory=dict)  # plain logs: which field became step, id, reward...


def empty_records() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
        RECORD_COLUMNS, ("int64", "object", "object", "bool", "float64", "float64", "int64", "object"))})


def records_frame(rows: list[dict]) -> pd.DataFrame:
    """A records table from dicts; missing columns get their 'unknown' value."""
    df = pd.DataFrame(rows) if rows else empty_records()
    for col, default in (("example_id", None), ("prompt", None), ("reward", np.nan), ("length", np.nan),
                         ("rank", -1), ("completion", None)):
        if col not in df:
            df[col] = default
    missing = [c for c in ("step", "correct") if c not in df]
    if missing:
        raise CuratorError(f"outcome records lack {missing}: every record needs a step and a correct flag")
    df["step"] = df["step"].astype("int64")
    df["correct"] = df["correct"].astype(bool)
    df["rank"] = df["rank"].fillna(-1).astype("int64")
    df["reward"] = df["reward"].astype("float64")
    df["length"] = df["length"].astype("float64")
    return df[list(RECORD_COLUMNS)]


def match_examples(records: pd.DataFrame, examples: pd.DataFrame) -> pd.Series:
    """The workspace example id of each record: its own id when that id exists, else its prompt's.

    `examples` has columns example_id, prompt. Prompts match after whitespace
    normalization; a prompt shared by several examples (the same problem with
    different answers) is ambiguous and matches none of them.
    """
    known = set(examples["example_id"])
    by_id = records["example_id"].where(records["example_id"].isin(known))
    norm = examples.assign(key=examples["prompt"].map(normalize))
    unique = norm.drop_duplicates("key", keep=False).set_index("key")["example_id"]
    by_prompt = records["prompt"].map(lambda p: normalize(p) if isinstance(p, str) else None).map(unique)
    return by_id.fillna(by_prompt)


def ambiguous_prompts(prompts: pd.Series, examples: pd.DataFrame) -> list[str]:
    """The distinct logged prompts (normalized) that several workspace examples share, sorted."""
    shared = examples["prompt"].map(normalize).value_counts()
    shared = set(shared[shared > 1].index)
    return sorted({normalize(p) for p in prompts.dropna() if isinstance(p, str)} & shared)


def aggregate(records: pd.DataFrame) -> pd.DataFrame:
    """history rows from matched records: one per (step, example_id), all ranks together."""
    g = records.groupby(["step", "example_id"], sort=True)
    out = g.agg(n=("correct", "size"), n_correct=("correct", "sum"), mean_length=("length", "mean")).reset_index()
    out["n"] = out["n"].astype("int32")
    out["n_correct"] = out["n_correct"].astype("int32")
    out["n_timeout"] = 0
    out["n_error"] = 0
    out["clip_frac_correct"] = np.nan
    out["clip_frac_incorrect"] = np.nan
    out["kept"] = True
    return out


def source_run_id(importer: str, fingerprint: str) -> str:
    """import-<importer>-<hash>: the same source imported twice is the same run."""
    return f"import-{importer}-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:10]


def import_records(ws: Workspace, records: pd.DataFrame, *, importer: str, source: str, fingerprint: str,
                   run_id: str | None = None, model: str | None = None, config: dict | None = None,
                   warnings: list[str] | None = None, keep_completions: bool = False,
                   initial_probe: str | None = None, final_probe: str | None = None) -> ImportSummary:
    """Write outcome records as the history of one `import` run (see the module docstring)."""
    run_id = run_id or source_run_id(importer, fingerprint)
    for flag, probe in (("initial", initial_probe), ("final", final_probe)):
        if probe is None:
            continue
        row = ws.sql("SELECT kind, status FROM runs WHERE run_id = ?", [probe]).fetchone()
        if row is None or row[0] != "probe" or row[1] != "finished":
            raise CuratorError(f"--{flag}-probe {probe} is not a finished probe run; `curator probe --model "
                               f"<the {flag} model>` makes one (`curator sql \"SELECT run_id, kind, model FROM runs\"` "
                               "lists them)")
    records = records_frame(records.to_dict("records")) if set(records.columns) != set(RECORD_COLUMNS) else records
    examples = ws.df("SELECT example_id, prompt FROM examples")
    if examples.empty:
        raise CuratorError("no examples in the workspace; run `curator ingest` on the training data first, "
                           "so imported rollouts can be matched to their examples")
    given = records["example_id"]
    records = records.assign(example_id=match_examples(records, examples))
    matched = records[records["example_id"].notna()]
    lost = records[records["example_id"].isna()]
    # name a few of them as the trainer logged them: the prompt, else the id it gave
    samples = [str(x)[:80] for x in lost["prompt"].fillna(given[lost.index]).dropna().unique()[:3]]
    rows = aggregate(matched)
    rows.insert(0, "run_id", run_id)
    notes = list(warnings or [])
    ambiguous = ambiguous_prompts(lost["prompt"], examples)
    if ambiguous:
        shown = ", ".join(p[:60] for p in ambiguous[:5]) + (f", ... ({len(ambiguous)} in all)"
                                                           if len(ambiguous) > 5 else "")
        notes.append(f"{len(ambiguous)} logged prompts match several examples (the same prompt with different "
                     f"answers) and cannot be told apart without an id: {shown}")
    if len(lost):
        notes.append(f"{len(lost)} of {len(records)} records match no example in the workspace (by id or prompt "
                     "text) and were not imported; ingest the training data they came from, or pass the id "
                     "column the trainer logged")
    previous = ws.sql("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchone()
    replaced = previous is not None
    # what an earlier import recorded about the trainer (e.g. the callback's TRL arguments) is kept
    # unless this import says otherwise
    kept_config = {k: v for k, v in json.loads(previous[0]).items()
                   if k not in ("source", "importer", "warnings", "initial_probe", "final_probe")} if previous else {}
    with ws.transaction():
        for table in ("history", "rollouts", "evals", "runs"):
            ws.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        last = int(rows["step"].max()) if len(rows) else 0
        ws.write("runs", pd.DataFrame([{
            "run_id": run_id, "kind": "import", "model": model, "backend": importer, "seed": None,
            "config": json.dumps(kept_config | {"source": source, "importer": importer, "warnings": notes,
                                                "initial_probe": initial_probe, "final_probe": final_probe}
                                 | (config or {}), default=str),
            "status": "finished", "started_at": utcnow(), "finished_at": utcnow(),
            "last_step": last, "initial_run": initial_probe, "steps": last,
        }]))
        ws.write("history", rows)
        if final_probe:  # the final checkpoint's pass@1, as this run's eval at its last step
            ws.execute("INSERT INTO evals SELECT ?, ?, example_id, n, n_correct, n_timeout, n_error, temperature "
                       "FROM evals WHERE run_id = ? AND step = 0", [run_id, last, final_probe])
        if keep_completions and matched["completion"].notna().any():
            kept = matched[matched["completion"].notna()].copy()
            kept["sample_index"] = kept.groupby(["step", "example_id"]).cumcount()
            ws.write("rollouts", pd.DataFrame({
                "run_id": run_id, "step": kept["step"], "example_id": kept["example_id"],
                "sample_index": kept["sample_index"], "phase": "train", "completion": kept["completion"],
                "status": np.where(kept["correct"], "correct", "incorrect"),
                "reward": kept["reward"].fillna(kept["correct"].astype(float)),
                "length": kept["length"].fillna(kept["completion"].str.len()).astype("int64"),
            }))
    return ImportSummary(
        run_id=run_id, importer=importer, source=source, n_records=len(records), n_matched=len(matched),
        n_rows=len(rows), n_steps=int(rows["step"].nunique()) if len(rows) else 0,
        n_examples=int(rows["example_id"].nunique()) if len(rows) else 0, unmatched=len(lost),
        unmatched_samples=samples, warnings=notes, replaced=replaced,
    )
