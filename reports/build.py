"""build_report: workspace in, one self-contained HTML file out.

Reads each section's data (`data`), draws its figures (`figures`), writes the
plain-language findings (`glance`), renders the page (`render`) and writes it
atomically (a temporary file beside the target, then a rename), so a reader
never sees half a report. Only reads the workspace; a read-only one will do.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from curator import __version__
from curator.reports import data, figures, glance
from curator.reports.config import ReportConfig
from curator.reports.palette import LABEL_MEANINGS, colour_map
from curator.reports.render import label_classes, render

SECTION_TITLES = {
    "overview": "Overview", "labels": "Labels", "dynamics": "Learning dynamics", "gradsim": "Gradient similarity",
    "reasoning": "Reasoning quality", "predictions": "Predictions", "examples": "Examples", "exports": "Exports",
}
FIGURES = ("label_counts", "pass_scatter", "reward_by_label", "reward_by_run", "data_map", "gradsim_box",
           "gradsim_heatmap", "reasoning_scores", "reasoning_box", "reasoning_steps", "predicted_counts")


@dataclass
class ReportSummary:
    path: str
    bytes: int
    sections: list[str]  # ids of the sections present, in page order
    seconds: float


def collect(ws, config: ReportConfig) -> dict:
    """Every section's data (None where its tables are empty)."""
    r = data.Reader(ws)
    info = data.label_set(r, config)
    return {
        "label_set": info,
        "overview": data.overview(r, config, info) if r.filled("examples") or r.filled("datasets") else None,
        "labels": data.labels(r, config, info),
        "dynamics": data.dynamics(r, config, info),
        "gradsim": data.gradsim(r, config, info),
        "reasoning": data.reasoning(r, config, info),
        "predictions": data.predictions(r, config, info),
        "examples": data.examples(r, config, info),
        "exports": data.exports(r, config),
    }


def draw(sections: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Every figure of the present sections ("" for absent ones), and the one colour map they all use."""
    labels_seen: set[str] = set()
    if sections["labels"]:
        labels_seen |= {c["label"] for c in sections["labels"].counts}
    if sections["dynamics"]:
        labels_seen |= set(sections["dynamics"].by_label)
    if sections["gradsim"]:
        labels_seen |= {b.label for b in sections["gradsim"].boxes} | set(sections["gradsim"].groups)
    if sections["reasoning"]:
        labels_seen |= {b.label for b in sections["reasoning"].boxes} | set(sections["reasoning"].over_steps)
    if sections["predictions"]:
        labels_seen |= {c["label"] for c in sections["predictions"].counts}
        labels_seen |= {row["label"] for row in sections["predictions"].per_label}
    if sections["examples"]:
        labels_seen |= {g[0] for g in sections["examples"].groups}
    colours = colour_map(labels_seen)
    out = dict.fromkeys(FIGURES, "")
    if (d := sections["labels"]) is not None:
        out["label_counts"] = figures.label_counts(d, colours)
        out["pass_scatter"] = figures.pass_scatter(d, colours)
    if (d := sections["dynamics"]) is not None:
        if d.by_label:
            out["reward_by_label"] = figures.reward_by_label(d, colours)
        out["reward_by_run"] = figures.reward_by_run(d)
        if d.datamap is not None:
            out["data_map"] = figures.data_map(d.datamap, colours)
    if (d := sections["gradsim"]) is not None:
        out["gradsim_box"] = figures.gradsim_box(d, colours)
        if d.matrix:
            out["gradsim_heatmap"] = figures.gradsim_heatmap(d)
    if (d := sections["reasoning"]) is not None:
        out["reasoning_box"] = figures.reasoning_box(d, colours)
        if d.histogram:
            out["reasoning_scores"] = figures.reasoning_scores(d, colours)
        if d.over_steps:
            out["reasoning_steps"] = figures.reasoning_steps(d, colours)
    if (d := sections["predictions"]) is not None and d.counts:
        out["predicted_counts"] = figures.predicted_counts(d, colours)
    return out, colours


def render_report(ws, config: ReportConfig) -> tuple[str, list[str]]:
    """The page as a string and the ids of its sections (writes nothing)."""
    sections = collect(ws, config)
    figs, colours = draw(sections)
    present = [s for s in SECTION_TITLES if sections.get(s) is not None]
    ov = sections["overview"]
    names = sorted({d["name"] for d in ov.datasets}) if ov else []
    title = config.title or ("curator report: " + (", ".join(names[:3]) + (" and more" if len(names) > 3 else "")
                                                   if names else "empty workspace"))
    context = {
        **{k: v for k, v in sections.items()},
        "title": title, "version": __version__, "workspace": str(ws.path),
        "as_of": ov.as_of if ov else "",
        "sections": [(s, SECTION_TITLES[s]) for s in present],
        "findings": glance.findings(ov, sections["labels"], sections["dynamics"], sections["gradsim"],
                                    sections["reasoning"], sections["exports"], sections["predictions"]),
        "label_class": label_classes(colours), "meanings": LABEL_MEANINGS,
        "top_n": config.top_n, "rollouts_per_example": config.rollouts_per_example, "limit": config.max_text_chars,
        "min_judged": data.MIN_JUDGED, "likely": data.LIKELY,
        "confident_per_label": data.CONFIDENT_PER_LABEL,
    }
    return render(context, figs), present


def build_report(ws, config: ReportConfig | None = None) -> ReportSummary:
    """Render the workspace's report into config.out (atomically) and say what was written."""
    config = config or ReportConfig()
    t0 = time.perf_counter()
    page, present = render_report(ws, config)
    blob = page.encode("utf-8", errors="replace")
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the report a normal file's mode
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ReportSummary(str(out), len(blob), present, time.perf_counter() - t0)
