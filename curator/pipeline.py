"""The main job: every stage, in order, on the embedded default (`curator demo`).

Each step is the same library call a user would make with the CLI; this module
only chains them and prints their summaries. Stages are idempotent, so running
the demo twice redoes nothing that is already in the workspace.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from curator.errors import CuratorError

REPO = Path(__file__).resolve().parents[1]
LAB_DATA = REPO / "data" / "lab"
LAB_MODEL = LAB_DATA / "model"


@dataclass
class DemoConfig:
    data: str | None = None  # a dataset file or folder; default: the lab's generated train split

    def source(self) -> str:
        if self.data:
            return self.data
        train = LAB_DATA / "train.jsonl"
        if not train.exists():
            raise CuratorError(
                f"embedded dataset {train} is missing; run `curator lab generate` or pass --data"
            )
        return str(train)


def run_demo(c, config: DemoConfig) -> None:
    from curator.cli import report_ingest, report_references
    from curator.data.ingest import IngestConfig, ingest
    from curator.data.references import ReferenceConfig, check_references

    out = c.output
    t0 = time.time()
    source = config.source()
    out.line(f"[1/2] ingest {source}")
    with c.open() as ws:
        s = ingest(ws, IngestConfig(source=source, name=None if config.data else "lab"))
        report_ingest(out, s)
        out.line("[2/2] verify reference solutions against gold answers")
        with out.progress("verifying", s.n_kept) as advance:
            r = check_references(ws, ReferenceConfig(dataset=s.dataset), advance)
        report_references(out, r)
    out.line(f"done in {time.time() - t0:.1f}s; workspace {c.workspace} (try `curator info`)")
