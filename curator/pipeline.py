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
    model: str | None = None  # default: the shipped lab checkpoint
    seeds: tuple[int, ...] = (1, 42, 37)  # the public code's three seeds
    steps: int = 60
    prompts_per_step: int = 16
    lr: float = 2e-4
    tau: float = 0.1
    export_dir: str = "curator-export"
    report: str = "curator-report.html"

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
    from curator.analysis.gradsim import GradSimConfig, gradsim
    from curator.analysis.labels import LabelConfig, label
    from curator.cli import (
        report_export, report_gradsim, report_ingest, report_judge, report_labels, report_references,
        report_training, run_training,
    )
    from curator.export.stage import ExportConfig, export
    from curator.judge.stage import JudgeConfig, judge
    from curator.reports import ReportConfig, build_report
    from curator.train import TrainConfig
    from curator.data.ingest import IngestConfig, ingest
    from curator.data.references import ReferenceConfig, check_references

    out = c.output
    t0 = time.time()
    source = config.source()
    out.line(f"[1/8] ingest {source}")
    with c.open() as ws:
        s = ingest(ws, IngestConfig(source=source, name=None if config.data else "lab"))
        report_ingest(out, s)
        out.line("[2/8] verify reference solutions against gold answers")
        with out.progress("verifying", s.n_kept) as advance:
            r = check_references(ws, ReferenceConfig(dataset=s.dataset), advance)
        report_references(out, r)
        out.line(f"[3/8] GRPO, seeds {','.join(map(str, config.seeds))}: {config.steps} steps of "
                 f"{config.prompts_per_step} prompts x 8, then pass@1 from 32 samples")
        tc = TrainConfig(model=config.model or str(LAB_MODEL), seeds=config.seeds, dataset=s.dataset,
                         steps=config.steps, prompts_per_step=config.prompts_per_step, lr=config.lr)
        report_training(out, run_training(c, ws, tc))
        out.line(f"[4/8] learnability labels (tau {config.tau}) and continuous scores")
        report_labels(out, label(ws, LabelConfig(tau=config.tau)))
        out.line("[5/8] gradient similarity (random LoRA r16, projected to 8192 dims)")
        with out.progress("gradients", None) as advance:
            report_gradsim(out, gradsim(ws, GradSimConfig(), advance))
        out.line("[6/8] reasoning quality of correct rollouts (the lab's step checker as judge)")
        with out.progress("judging", None) as advance:
            report_judge(out, judge(ws, JudgeConfig(), advance))
        out.line(f"[7/8] export: drop unlearnable and never_solved, staged order, into {config.export_dir}/")
        report_export(out, export(ws, ExportConfig(out=config.export_dir, name="lab-curated",
                                                   drop=["unlearnable", "never_solved"], order="staged")))
        out.line(f"[8/8] the report: {config.report}")
        r = build_report(ws, ReportConfig(out=config.report))
    out.line(f"report {Path(r.path).resolve()} ({r.bytes / 1e6:.2f} MB, {len(r.sections)} sections)")
    out.line(f"done in {time.time() - t0:.1f}s; workspace {c.workspace} (try `curator info`); "
             f"open the report in any browser")
