"""The ingest stage: a source in, validated examples and a quarantine out.

    ingest(workspace, IngestConfig(source="data/lab/train.jsonl")) -> IngestSummary

Steps: read every row (a bad line is a row with a reason, not a crash), map
fields, normalize, ask math-verify whether each gold answer parses, run the
validation suite, compare with what the workspace already holds, then write
`datasets`, `examples` and `quarantine` in one transaction. Every row that is
not kept is in `quarantine` with its reason; re-ingesting the same data
changes nothing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from curator.data.fields import FieldMapping, detect_mapping, extract
from curator.data.ids import content_id, normalize
from curator.data.sources import RawRow, read_source
from curator.errors import CuratorError, NothingUsable
from curator.store import Workspace, utcnow

RAW_LIMIT = 64 * 1024
_NAME = re.compile(r"[^A-Za-z0-9_.\-/]+")


@dataclass
class IngestConfig:
    """Everything `curator ingest` needs; the CLI flags map one to one."""

    source: str  # local file or folder, or a Hub dataset name
    name: str | None = None  # dataset name in the workspace (default: derived from source)
    split: str | None = None  # Hub split (default train), or a file stem inside a folder
    revision: str | None = None  # Hub revision
    prompt_field: str | None = None  # override automatic mapping (dotted paths allowed)
    answer_field: str | None = None
    id_field: str | None = None  # keep the user's ids instead of content hashes
    solution_field: str | None = None
    max_prompt_chars: int = 20_000
    max_answer_chars: int = 1_000
    answer_timeout: float = 5.0  # seconds per gold answer parse

    def __post_init__(self) -> None:
        if self.max_prompt_chars < 1 or self.max_answer_chars < 1:
            raise CuratorError("--max-prompt-chars and --max-answer-chars must be at least 1")
        if self.answer_timeout <= 0:
            raise CuratorError("--answer-timeout must be positive (seconds)")

    def dataset_name(self) -> str:
        if self.name:
            return self.name
        p = Path(self.source)
        base = p.stem if p.suffix else (p.name if p.exists() else self.source)
        if p.is_dir() and not p.name:
            base = p.resolve().name
        if self.split and not p.exists():
            base = f"{base}:{self.split}"
        return _NAME.sub("_", base) or "dataset"


@dataclass
class IngestSummary:
    dataset: str
    source: str
    mapping: dict
    n_rows: int
    n_new: int
    n_already_present: int
    n_quarantined: int
    reasons: Counter = field(default_factory=Counter)  # category -> rows

    @property
    def n_kept(self) -> int:
        return self.n_new + self.n_already_present


def _cut(raw: str) -> str:
    if len(raw) <= RAW_LIMIT:
        return raw
    return raw[:RAW_LIMIT] + f"…[cut: {len(raw)} chars in all]"


def _category(reason: str) -> str:
    return reason.split(":", 1)[0]


def normalize_rows(rows: list[RawRow], mapping: FieldMapping) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Extract and normalize every readable row (pure); unreadable rows come back as reasons."""
    reasons: dict[int, list[str]] = {}
    out = []
    for r in rows:
        if r.record is None:
            reasons[r.row_index] = [f"unreadable row: {r.error}"]
            continue
        got = extract(r.record, mapping)
        if isinstance(got, list):
            reasons[r.row_index] = got
            continue
        out.append(
            {
                "row_index": r.row_index,
                "prompt": got.prompt,
                "answer": got.answer,
                "solution": got.solution,
                "meta": json.dumps(got.meta, ensure_ascii=False, default=str),
                "source_id": got.source_id,
            }
        )
    frame = pd.DataFrame(
        out, columns=["row_index", "prompt", "answer", "solution", "meta", "source_id"]
    )
    frame["prompt_key"] = frame.prompt.map(normalize)
    frame["answer_key"] = frame.answer.map(normalize)
    ids = [
        sid if sid is not None else content_id(p, a)
        for sid, p, a in zip(frame.source_id, frame.prompt, frame.answer)
    ]
    frame["example_id"] = pd.Series(ids, index=frame.index, dtype="object")
    return frame, reasons


def _check_answers(frame: pd.DataFrame, timeout: float) -> pd.DataFrame:
    """Add answer_parses / answer_detail: does math-verify read each gold answer?"""
    from curator.verify import check_golds

    frame = frame.copy()
    nonempty = frame.answer.str.len() > 0
    unique = sorted(set(frame.answer[nonempty]))
    results = dict(zip(unique, check_golds(unique, timeout=timeout))) if unique else {}
    frame["answer_parses"] = [
        (results[a].ok if ok else None) for a, ok in zip(frame.answer, nonempty)
    ]
    frame["answer_detail"] = [
        (results[a].detail if ok else None) for a, ok in zip(frame.answer, nonempty)
    ]
    frame["answer_parses"] = frame.answer_parses.astype("boolean")
    return frame


def _against_workspace(ws: Workspace, dataset: str, frame: pd.DataFrame) -> tuple[pd.Series, dict[int, list[str]]]:
    """Which candidate rows are already stored (no-op), and which collide with other content."""
    if frame.empty:
        return pd.Series(False, index=frame.index), {}
    ws.con.register("_candidates", frame[["row_index", "example_id", "prompt_key", "answer_key"]])
    try:
        hits = ws.df(
            "SELECT c.row_index, e.dataset, e.prompt, e.answer FROM _candidates c "
            "JOIN examples e USING (example_id)"
        )
    finally:
        ws.con.unregister("_candidates")
    present = pd.Series(False, index=frame.index)
    reasons: dict[int, list[str]] = {}
    by_row = frame.set_index("row_index")
    for h in hits.itertuples(index=False):
        row = by_row.loc[h.row_index]
        same = normalize(h.prompt) == row.prompt_key and normalize(h.answer) == row.answer_key
        if same and h.dataset == dataset:
            present[frame.row_index == h.row_index] = True
        elif same:
            reasons[int(h.row_index)] = [
                f"duplicate: the same example is already in the workspace from dataset {h.dataset!r}"
            ]
        else:
            reasons[int(h.row_index)] = [
                f"id not unique: id {row.example_id!r} is already in the workspace (dataset "
                f"{h.dataset!r}) with different content; use another --id-field or --name"
            ]
    return present, reasons


def ingest(ws: Workspace, config: IngestConfig) -> IngestSummary:
    """Read, map, validate and store one dataset; return what happened to every row."""
    from curator.data.validate import validate

    src = read_source(config.source, config.split, config.revision)
    name = config.dataset_name()
    if not src.rows:
        raise NothingUsable(f"{config.source} has no rows")
    sample = [r.record for r in src.rows[:200] if r.record is not None]
    if not sample:
        first = next(r for r in src.rows if r.error)
        raise NothingUsable(
            f"{config.source}: none of the first {min(len(src.rows), 200)} rows could be read "
            f"(first problem: {first.error})"
        )
    mapping = detect_mapping(
        sample, config.prompt_field, config.answer_field, config.id_field, config.solution_field
    )

    frame, reasons = normalize_rows(src.rows, mapping)
    frame = _check_answers(frame, config.answer_timeout)
    for row, rs in validate(frame, config.max_prompt_chars, config.max_answer_chars).items():
        reasons.setdefault(row, []).extend(rs)
    valid = frame[~frame.row_index.isin(reasons)]
    present, clashes = _against_workspace(ws, name, valid)
    for row, rs in clashes.items():
        reasons.setdefault(row, []).extend(rs)
    new = valid[~present.to_numpy() & ~valid.row_index.isin(clashes).to_numpy()]

    now = utcnow()
    raw_by_row = {r.row_index: r.raw for r in src.rows}
    quarantine = pd.DataFrame(
        {
            "dataset": name,
            "row_index": list(reasons),
            "reason": ["; ".join(rs) for rs in reasons.values()],
            "raw": [_cut(raw_by_row[r]) for r in reasons],
            "ingested_at": now,
        }
    )
    examples = new.assign(dataset=name, ingested_at=now)[
        ["example_id", "dataset", "row_index", "prompt", "answer", "solution", "meta", "ingested_at"]
    ]
    n_present = int(present.sum())
    with ws.transaction():
        prior = ws.sql("SELECT first_ingested_at FROM datasets WHERE dataset = ?", [name]).fetchone()
        ws.execute("DELETE FROM quarantine WHERE dataset = ?", [name])
        ws.write("quarantine", quarantine)
        ws.write("examples", examples)
        kept = ws.sql("SELECT count(*) FROM examples WHERE dataset = ?", [name]).fetchone()[0]
        ws.write(
            "datasets",
            pd.DataFrame(
                [
                    {
                        "dataset": name,
                        "source": src.source,
                        "split": src.split,
                        "revision": src.revision,
                        "mapping": mapping.to_json(),
                        "n_rows": len(src.rows),
                        "n_kept": kept,
                        "n_quarantined": len(quarantine),
                        "first_ingested_at": prior[0] if prior else now,
                        "last_ingested_at": now,
                    }
                ]
            ),
            on_conflict="replace",
        )
    summary = IngestSummary(
        dataset=name,
        source=src.source,
        mapping=asdict(mapping),
        n_rows=len(src.rows),
        n_new=len(new),
        n_already_present=n_present,
        n_quarantined=len(quarantine),
        reasons=Counter(_category(rs[0]) for rs in reasons.values()),
    )
    if valid.empty:
        top = ", ".join(f"{k} ({v})" for k, v in summary.reasons.most_common(3))
        raise NothingUsable(
            f"no usable row in {config.source}: all {len(src.rows)} rows were quarantined "
            f"({top}); see `SELECT * FROM quarantine WHERE dataset = '{name}'`"
        )
    return summary
