"""Read a dataset source into raw rows, never failing on one bad row.

A source is a local `.jsonl`/`.json`/`.parquet`/`.csv` file, a folder of them,
or a Hub dataset name (read through `datasets`, imported only then). Every
row comes back as a `RawRow`: either a dict record, or the reason it could not
be read (invalid UTF-8, invalid JSON, not an object...) with the raw text, so
ingest can quarantine it instead of stopping.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from curator.errors import CuratorError

SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


@dataclass(frozen=True)
class RawRow:
    row_index: int
    record: dict[str, Any] | None  # None when the row could not be read
    raw: str  # the row as text (for quarantine)
    error: str | None = None  # why `record` is None


@dataclass(frozen=True)
class Source:
    """What was read: where from, which revision, and its rows."""

    source: str
    split: str | None
    revision: str | None
    rows: list[RawRow]


def read_source(
    source: str, split: str | None = None, revision: str | None = None
) -> Source:
    """Read `source` (path or Hub name) into raw rows."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if split is not None:
            files = [p for p in files if p.stem == split]
        if not files:
            raise CuratorError(
                f"{source} holds no {'/'.join(SUFFIXES)} files"
                + (f" named {split}.*" if split else "")
                + "; point curator ingest at a file, a folder of them, or a Hub dataset"
            )
        rows: list[RawRow] = []
        digest = hashlib.sha256()
        for f in files:
            data = f.read_bytes()
            digest.update(data)
            offset = len(rows)
            rows.extend(
                RawRow(offset + r.row_index, r.record, r.raw, r.error) for r in _read_file_bytes(f, data)
            )
        return Source(str(path), split, digest.hexdigest()[:16], rows)
    if path.is_file():
        if path.suffix not in SUFFIXES:
            raise CuratorError(
                f"{source}: unsupported file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}"
            )
        data = path.read_bytes()
        return Source(
            str(path), None, hashlib.sha256(data).hexdigest()[:16], list(_read_file_bytes(path, data))
        )
    if path.suffix in SUFFIXES or not _HUB_NAME.match(source):
        raise CuratorError(f"{source}: no such file or folder")
    return _read_hub(source, split, revision)


def _read_file_bytes(path: Path, data: bytes) -> Iterator[RawRow]:
    if path.suffix == ".jsonl":
        yield from read_jsonl_bytes(data)
    elif path.suffix == ".json":
        yield from _read_json(path, data)
    elif path.suffix == ".parquet":
        yield from _read_parquet(path, data)
    else:
        yield from _read_csv(data)


def read_jsonl_bytes(data: bytes) -> Iterator[RawRow]:
    """One row per non-empty line; a bad line becomes a row with an error, not an exception."""
    lines = data.split(b"\n")
    last = len(lines) - 1
    index = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            yield RawRow(
                index,
                None,
                line.decode("utf-8", errors="replace"),
                f"line {i + 1} is not valid UTF-8 (byte {e.start}); re-encode the file as UTF-8",
            )
            index += 1
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            hint = " (the file looks truncated)" if i == last else ""
            yield RawRow(index, None, text, f"line {i + 1} is not valid JSON: {e.msg}{hint}")
            index += 1
            continue
        if not isinstance(record, dict):
            yield RawRow(
                index, None, text, f"line {i + 1} is a JSON {type(record).__name__}, not an object"
            )
        else:
            yield RawRow(index, record, text)
        index += 1


def _read_json(path: Path, data: bytes) -> Iterator[RawRow]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        # Maybe it is JSON Lines with a .json name.
        rows = list(read_jsonl_bytes(data))
        if any(r.record is not None for r in rows):
            yield from rows
            return
        raise CuratorError(f"{path}: not valid JSON ({e}); fix the file or save it as .jsonl") from None
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise CuratorError(
                f"{path}: a JSON object at the top; expected a list of rows "
                "(or an object with exactly one list, such as {\"data\": [...]})"
            )
        doc = lists[0]
    if not isinstance(doc, list):
        raise CuratorError(f"{path}: expected a JSON list of row objects")
    for i, rec in enumerate(doc):
        raw = json.dumps(rec, ensure_ascii=False, default=str)
        if isinstance(rec, dict):
            yield RawRow(i, rec, raw)
        else:
            yield RawRow(i, None, raw, f"item {i} is a JSON {type(rec).__name__}, not an object")


def _read_parquet(path: Path, data: bytes) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as e:
        raise CuratorError(f"{path}: not a readable parquet file ({e})") from None
    for i, rec in enumerate(table.to_pylist()):
        yield RawRow(i, rec, json.dumps(rec, ensure_ascii=False, default=str))


def _read_csv(data: bytes) -> Iterator[RawRow]:
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for i, rec in enumerate(reader):
        raw = json.dumps(rec, ensure_ascii=False, default=str)
        bad = [k for k, v in rec.items() if isinstance(v, str) and _has_surrogates(v)]
        if None in rec:
            yield RawRow(i, None, raw, f"row {i + 1} has more fields than the header")
        elif bad:
            yield RawRow(
                i,
                None,
                raw.encode("utf-8", errors="replace").decode("utf-8"),
                f"row {i + 1}: field {bad[0]!r} is not valid UTF-8; re-encode the file as UTF-8",
            )
        else:
            yield RawRow(i, rec, raw)


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_hub(name: str, split: str | None, revision: str | None) -> Source:
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise CuratorError("reading a Hub dataset needs `datasets`: pip install datasets") from None
    split = split or "train"
    try:
        ds = datasets.load_dataset(name, split=split, revision=revision)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as e:
        raise CuratorError(
            f"could not load Hub dataset {name!r} split {split!r}: {type(e).__name__}: "
            f"{str(e).splitlines()[0][:200] if str(e) else ''}; check the name, --split and "
            "network access (HF_HUB_OFFLINE=1 reads only the local cache)"
        ) from None
    fingerprint = getattr(ds, "_fingerprint", None)
    rev = revision or fingerprint
    rows = [
        RawRow(i, rec, json.dumps(rec, ensure_ascii=False, default=str)) for i, rec in enumerate(ds)
    ]
    return Source(name, split, rev, rows)
