"""verl's `data.sampler` hook, fed by a curator export's curriculum order.

    python -m verl.trainer.main_ppo ... \\
        data.sampler.class_path=pkg://curator.integrations.verl_sampler \\
        data.sampler.class_name=VerlOrderSampler \\
        +data.sampler.order=/path/to/curator-export \\
        +data.sampler.id_field=extra_info.index \\
        data.dataloader_num_workers=0

What verl expects, as checked in volcengine/verl `verl/trainer/main_ppo.py`
(`create_rl_sampler`) and `verl/experimental/dataset/sampler.py`: the class is
loaded with `load_extern_object(class_path, class_name)`, built as
`cls(data_source=dataset, data_config=config.data)`, must pass
`isinstance(sampler, AbstractSampler)` (a `torch.utils.data.Sampler[int]`
whose abstract `__init__(data_source, data_config)` is the interface), and
needs `data.dataloader_num_workers=0`. `AbstractCurriculumSampler` adds
`update(batch)`, called after every step; a fixed order needs none of it,
so the sampler is an `AbstractSampler` and its `update` does nothing.

`CuratorOrderSampler` is a plain torch `Sampler[int]` and never imports
verl. `VerlOrderSampler`, looked up on this module (as verl's loader does),
is the same class also deriving from verl's `AbstractSampler` when verl is
importable (verl's class is not an ABC, so virtual registration cannot
satisfy its isinstance check), and `CuratorOrderSampler` itself otherwise.

The order: a curator export folder (its `parquet/<split>.parquet`, else
`jsonl/<split>.jsonl`, else `verl/<split>.parquet`: every format keeps the
export's row order), one of those files, or a `.txt` with one example id a
line. Each dataset row is mapped by its id field (default
`extra_info.index`, read from verl's `RLHFDataset.dataframe` without
tokenizing) to the example id the workspace knows it by, which is what
`curator ingest --id-field extra_info.index` stores. Because rows are
matched by id, the order survives verl's own filtering (over-long prompts
removed) and any reshuffling of the parquet. Training on curator's own
verl export instead: its rows are already in order (set data.shuffle=False),
or pass `id_field=extra_info.example_id`.

Rows whose id is not in the order (dropped by the export's filters, or
unknown to the workspace) are dropped by default and their count logged;
`unknown=append` yields them after the ordered rows, in dataset order. Ids in
the order that no dataset row has are counted and logged. Rows sharing one
id are yielded together at that id's place. The order is the same every
epoch and every run (no randomness), so checkpoint resumption by
fast-forwarding the sampler reproduces it; `len()` is the number of indices
yielded.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
from collections.abc import Iterator, Mapping, Sized
from pathlib import Path
from typing import Any

from torch.utils.data import Sampler

log = logging.getLogger(__name__)

DEFAULT_ID_FIELD = "extra_info.index"
UNKNOWN = ("drop", "append")


class CuratorOrderSampler(Sampler[int]):
    """Dataset indices in a curator export's order (see the module docstring).

    `data_config` is verl's `config.data`. Each option (`order`, `id_field`,
    `unknown`, `split`) comes from the keyword argument, else from the
    config's `sampler` section, else from the environment (`CURATOR_ORDER`,
    `CURATOR_ORDER_ID_FIELD`, `CURATOR_ORDER_UNKNOWN`).
    """

    def __init__(self, data_source: Sized, data_config: Any = None, *, order: str | os.PathLike | None = None,
                 id_field: str | None = None, unknown: str | None = None, split: str | None = None):
        section = _section(data_config)
        order = order or section.get("order") or os.environ.get("CURATOR_ORDER")
        if not order:
            raise ValueError("no curator order given: set data.sampler.order (with '+' on the verl command line) "
                             "to a curator export folder, or CURATOR_ORDER")
        self.id_field = str(id_field or section.get("id_field") or os.environ.get("CURATOR_ORDER_ID_FIELD")
                            or DEFAULT_ID_FIELD)
        self.unknown = str(unknown or section.get("unknown") or os.environ.get("CURATOR_ORDER_UNKNOWN") or "drop")
        if self.unknown not in UNKNOWN:
            raise ValueError(f"unknown={self.unknown!r}: choose drop or append")
        self.split = str(split or section.get("split") or "train")
        self.order_path = Path(order)
        self.order_ids = read_order(self.order_path, self.split)
        row_ids = dataset_ids(data_source, self.id_field)

        rows_by_id: dict[str, list[int]] = {}
        for i, rid in enumerate(row_ids):
            if rid is not None:
                rows_by_id.setdefault(rid, []).append(i)
        placed: list[int] = []
        seen: set[str] = set()
        self.n_missing = 0  # ids in the order that no dataset row has
        for eid in self.order_ids:
            if eid in seen:
                continue
            seen.add(eid)
            rows = rows_by_id.get(eid)
            if rows:
                placed.extend(rows)
            else:
                self.n_missing += 1
        rest = [i for i, rid in enumerate(row_ids) if rid is None or rid not in seen]
        self.n_unknown = len(rest)  # dataset rows not in the order
        self.indices: list[int] = placed + (rest if self.unknown == "append" else [])
        if not self.indices:
            raise ValueError(f"none of the {len(row_ids)} dataset rows has a {self.id_field} that is in the order "
                             f"{self.order_path} ({len(self.order_ids)} ids); check id_field")
        log.info("curator order %s: %d of %d dataset rows in order%s; %d order ids not in the dataset",
                 self.order_path, len(placed), len(row_ids),
                 f", {self.n_unknown} not in the order {'appended' if self.unknown == 'append' else 'dropped'}",
                 self.n_missing)
        if self.n_unknown and self.unknown == "drop":
            log.warning("curator order: dropped %d dataset rows whose %s is not in %s (unknown=append keeps them)",
                        self.n_unknown, self.id_field, self.order_path)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def update(self, batch: Any = None, **kwargs: Any) -> None:
        """The curriculum hook verl calls on curriculum samplers; a fixed order ignores it."""


def _section(data_config: Any) -> Mapping:
    """`data_config.sampler` as a mapping (OmegaConf DictConfig, dict, or anything with .get)."""
    if data_config is None:
        return {}
    get = getattr(data_config, "get", None)
    section = get("sampler", None) if callable(get) else getattr(data_config, "sampler", None)
    if section is None:
        return {}
    if isinstance(section, Mapping) or callable(getattr(section, "get", None)):
        return section
    return {}


def _id(value: Any) -> str | None:
    """An id as the workspace stores it: 7, 7.0 and "7" are all "7" (as `curator ingest --id-field` does)."""
    if value is None or isinstance(value, (Mapping, list, tuple)):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isnan(f):
            return None
        return str(int(f)) if f.is_integer() else str(f)
    text = str(value).strip()
    return text or None


def _follow(value: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(value, Mapping) and p in value:
            value = value[p]
        else:
            return None
    return value


def dataset_ids(data_source: Any, id_field: str) -> list[str | None]:
    """The id of every dataset row, by dotted path, without calling `__getitem__` when avoidable."""
    parts = id_field.split(".")
    frame = getattr(data_source, "dataframe", None)
    if frame is None and hasattr(data_source, "columns"):
        frame = data_source
    if frame is not None:
        names = list(getattr(frame, "column_names", None) or getattr(frame, "columns", []))
        if parts[0] in names:
            column = frame[parts[0]]
            values = column.tolist() if hasattr(column, "tolist") else list(column)
            return [_id(_follow(v, parts[1:])) for v in values]
    out = []
    for i in range(len(data_source)):
        row = data_source[i]
        value = _follow(row, parts)
        if value is None and id_field == DEFAULT_ID_FIELD and isinstance(row, Mapping):
            value = row.get("index")  # verl's RLHFDataset copies extra_info.index to row["index"]
        out.append(_id(value))
    return out


def read_order(path: Path, split: str = "train") -> list[str]:
    """Example ids in curriculum order from an export folder or file (see the module docstring)."""
    if path.is_dir():
        for rel in (f"parquet/{split}.parquet", f"jsonl/{split}.jsonl", f"verl/{split}.parquet"):
            if (path / rel).is_file():
                return read_order(path / rel, split)
        raise FileNotFoundError(f"{path} holds no parquet/{split}.parquet, jsonl/{split}.jsonl or "
                                f"verl/{split}.parquet: point the sampler at a `curator export` folder or file")
    if not path.is_file():
        raise FileNotFoundError(f"curator order {path}: no such file or folder")
    if path.suffix == ".txt":
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        ids = []
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                ids.append(_id(row.get("example_id", _follow(row, ["extra_info", "example_id"]))))
        return _checked(ids, path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        if "example_id" in names:
            return _checked([_id(v) for v in pq.read_table(path, columns=["example_id"]).column(0).to_pylist()],
                            path)
        if "extra_info" in names:
            values = pq.read_table(path, columns=["extra_info"]).column(0).to_pylist()
            return _checked([_id(_follow(v, ["example_id"])) for v in values], path)
        raise ValueError(f"{path} has no example_id or extra_info.example_id column (columns: {', '.join(names)})")
    raise ValueError(f"curator order {path}: expected an export folder, .parquet, .jsonl or .txt")


def _checked(ids: list[str | None], path: Path) -> list[str]:
    if not ids or any(i is None for i in ids):
        raise ValueError(f"{path}: every row needs an example_id (curator export writes one)")
    return ids  # type: ignore[return-value]


_VERL_CLASSES: dict[type, type] = {}


def _verl_sampler_class() -> type:
    try:
        from verl.experimental.dataset.sampler import AbstractSampler
    except Exception:  # verl absent or unimportable here: the plain torch sampler
        return CuratorOrderSampler
    if AbstractSampler not in _VERL_CLASSES:
        _VERL_CLASSES[AbstractSampler] = type("VerlOrderSampler", (CuratorOrderSampler, AbstractSampler), {
            "__module__": __name__, "__qualname__": "VerlOrderSampler",
            "__doc__": "CuratorOrderSampler registered as verl's AbstractSampler (built when first looked up).",
        })
    return _VERL_CLASSES[AbstractSampler]


def __getattr__(name: str) -> Any:
    if name == "VerlOrderSampler":
        return _verl_sampler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
