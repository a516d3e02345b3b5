"""The export stage: filter, order, write every format and the card, record every drop.

    export(workspace, ExportConfig(out="exports/lab", drop=["unlearnable", "never_solved"])) -> ExportSummary

The workspace is checkpointed before anything is read. Candidates are the
examples joined with their label and scores in one label set; each filter
drops rows with a reason; every dropped row and its reason go to
`export_drops`, the export itself to `exports`. kept + dropped = input, reason
by reason. `--push-to-hub` uploads the `hub/` folder; `--dry-run` writes that
folder and sends nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from curator import __version__
from curator.errors import CuratorError
from curator.export.card import render_card
from curator.export.formats import FORMATS, write, write_hub_folder
from curator.export.select import ORDERS, apply_filters, drop_labels, keep_labels, order, pass_band, where_mask
from curator.store import Workspace, utcnow


@dataclass
class ExportConfig:
    out: str  # folder to write into (replaced)
    name: str = "curated"
    split: str = "train"
    drop: list[str] = field(default_factory=list)  # labels to drop
    keep: list[str] = field(default_factory=list)  # labels to keep (others dropped)
    pass_band: tuple[float, float] | None = None  # keep initial pass@1 in [lo, hi]
    where: str | None = None  # SQL predicate over the candidate columns
    order: str = "original"
    formats: list[str] = field(default_factory=lambda: list(FORMATS))
    bare: bool = False  # leave label and score columns out
    label_set: str | None = None  # default: the latest
    license: str | None = None
    push_to_hub: str | None = None  # ORG/NAME
    private: bool = False
    dry_run: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise CuratorError(f"--order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad:
            raise CuratorError(f"unknown --format {', '.join(bad)}; choose from {', '.join(FORMATS)}")
        if self.pass_band and not (0 <= self.pass_band[0] <= self.pass_band[1] <= 1):
            raise CuratorError("--pass-band lo:hi needs 0 <= lo <= hi <= 1")


@dataclass
class ExportSummary:
    export_id: str
    out: str
    n_in: int
    n_kept: int
    drops: Counter
    files: list[str]
    pushed: str | None = None


CANDIDATES = """
SELECT e.example_id, e.prompt, e.answer, e.solution, e.dataset, e.row_index,
       l.label, s.initial_pass1, s.final_pass1_mean, s.limr, s.hist_std, s.confidence, s.variability,
       s.learnability, s.slope, g.mean_sim
FROM examples e
LEFT JOIN labels l ON l.example_id = e.example_id AND l.label_set = $ls
LEFT JOIN scores s ON s.example_id = e.example_id AND s.label_set = $ls
LEFT JOIN (SELECT example_id, avg(mean_sim) AS mean_sim FROM gradsim WHERE label_set = $ls GROUP BY 1) g
       ON g.example_id = e.example_id
"""


def export(ws: Workspace, config: ExportConfig) -> ExportSummary:
    ws.checkpoint()
    ls_row = ws.sql("SELECT label_set, tau, run_ids FROM label_sets "
                    + ("WHERE label_set = ? " if config.label_set else "") + "ORDER BY created_at DESC LIMIT 1",
                    [config.label_set] if config.label_set else []).fetchone()
    if config.label_set and not ls_row:
        raise CuratorError(f"no label set {config.label_set!r}")
    if (config.drop or config.keep or config.order in ("staged",)) and not ls_row:
        raise CuratorError("label filters and the staged order need labels: run `curator label` first")
    ls = ls_row[0] if ls_row else ""
    frame = ws.df(CANDIDATES, {"ls": ls}).sort_values(["dataset", "row_index"], kind="mergesort", ignore_index=True)
    if frame.empty:
        raise CuratorError("no examples to export; run `curator ingest` first")

    filters = []
    if config.drop:
        filters.append(drop_labels(config.drop))
    if config.keep:
        filters.append(keep_labels(config.keep))
    if config.pass_band:
        filters.append(pass_band(*config.pass_band))
    if config.where:
        filters.append(where_mask(config.where, _where(ws, frame, config.where)))
    kept, dropped = apply_filters(frame, filters)
    kept = order(kept, config.order, config.seed)
    if kept.empty:
        raise CuratorError(f"every one of {len(frame)} examples was dropped ("
                           + ", ".join(f"{r}: {c}" for r, c in Counter(dropped.reason).most_common(3))
                           + "); loosen the filters")
    columns = ["example_id", "prompt", "answer", "solution", "dataset"]
    if not config.bare:
        columns += ["label", "initial_pass1", "final_pass1_mean", "limr", "hist_std", "confidence", "variability",
                    "learnability", "slope", "mean_sim"]
    rows = kept[columns]

    out = Path(config.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    export_id = "x-" + hashlib.sha256(json.dumps(asdict(config), sort_keys=True, default=str).encode()
                                      + str(utcnow()).encode()).hexdigest()[:10]
    drops = Counter(dropped.reason)
    card = render_card(
        name=config.name, split=config.split, n_kept=len(rows), n_in=len(frame), drops=drops, order=config.order,
        sources=ws.df("SELECT dataset, source, split, revision FROM datasets ORDER BY dataset").to_dict("records"),
        runs=ws.df("SELECT run_id, model, seed, steps FROM runs WHERE run_id IN "
                   "(SELECT unnest(?::VARCHAR[])) ORDER BY run_id",
                   [json.loads(ls_row[2]) if ls_row else []]).to_dict("records"),
        label_set={"label_set": ls, "tau": ls_row[1]} if ls_row else None,
        label_counts=frame.label.value_counts().to_dict(), filters=_describe(config), version=__version__,
        license=config.license)
    files = [str(write(rows, out, fmt, config.split)) for fmt in config.formats]
    (out / "README.md").write_text(card)
    files.append(str(out / "README.md"))
    hub_folder = write_hub_folder(rows, out, config.split, card) if (config.push_to_hub or config.dry_run) else None
    pushed = None
    if config.push_to_hub and not config.dry_run:
        from curator.export.hub import push

        pushed = push(hub_folder, config.push_to_hub, config.private)
    with ws.transaction():
        ws.write("exports", pd.DataFrame([{
            "export_id": export_id, "created_at": utcnow(), "destination": pushed or str(out),
            "formats": json.dumps(config.formats), "config": json.dumps(asdict(config), default=str),
            "n_in": len(frame), "n_kept": len(rows), "n_dropped": len(dropped)}]))
        ws.write("export_drops", dropped[["example_id", "reason"]].assign(export_id=export_id))
    return ExportSummary(export_id, str(out), len(frame), len(rows), drops, files, pushed)


def _where(ws: Workspace, frame: pd.DataFrame, sql: str) -> pd.Series:
    import duckdb

    ws.con.register("candidates", frame)
    try:
        keep = ws.df(f"SELECT coalesce(({sql}), false) AS keep FROM candidates")
    except duckdb.Error as e:
        raise CuratorError(f"--where {sql!r} is not a valid predicate over the export columns "
                           f"({', '.join(frame.columns)}): {str(e).splitlines()[0]}") from None
    finally:
        ws.con.unregister("candidates")
    return pd.Series(keep.keep.to_numpy(), index=frame.index)


def _describe(config: ExportConfig) -> list[str]:
    out = []
    if config.drop:
        out.append(f"--drop {','.join(config.drop)}")
    if config.keep:
        out.append(f"--keep {','.join(config.keep)}")
    if config.pass_band:
        out.append(f"--pass-band {config.pass_band[0]}:{config.pass_band[1]}")
    if config.where:
        out.append(f"--where {config.where}")
    return out
