"""Section data to SVG figures: which chart, which axes, which colours.

Each function takes one section's aggregated data (from `data`) and the label
colour map (from `palette`) and returns an SVG string from `svg`. The paper's
figures are named where they are reproduced.
"""

from __future__ import annotations

import hashlib

from curator.reports import svg
from curator.reports.data import (BoxStats, DynamicsData, GradsimData, LabelsData, PredictionsData, ReasoningData,
                                  ScatterData)
from curator.reports.palette import SCORE_COLOURS, dash, order_labels

def _x_range(lines) -> tuple[float, float]:
    """Steps from 0 to the last one drawn."""
    last = max((x for pts in lines for x, *_ in pts), default=1.0)
    return 0.0, max(1.0, last)


RUN_STYLES = (("", 0.95), ("7 3", 0.75), ("2 3", 0.9), ("10 3 2 3", 0.6), ("4 4", 0.5), ("1 3", 0.7))


def label_counts(d: LabelsData, colours: dict[str, str]) -> str:
    by = {c["label"]: c for c in d.counts}
    bars = [svg.Bar(lab, colours[lab], by[lab]["n"], f"{by[lab]['n']:,} ({by[lab]['share']:.0%})")
            for lab in order_labels(by)]
    return svg.hbars(bars, value_label="examples", aria=f"Examples per label in label set {d.info.label_set}")


def _jitter(example_id: str, span_x: float, span_y: float) -> tuple[float, float]:
    """A small deterministic offset (up to 1% of each axis) from the id's hash, so equal values stay visible."""
    h = hashlib.md5(str(example_id).encode("utf-8")).digest()
    u, v = int.from_bytes(h[:4], "big") / 2**32, int.from_bytes(h[4:8], "big") / 2**32
    return (u - 0.5) * 0.02 * span_x, (v - 0.5) * 0.02 * span_y


def _scatter_series(s: ScatterData, colours: dict[str, str], x_name: str, y_name: str,
                    spans: tuple[float, float] = (1.0, 1.0)) -> list[svg.Series]:
    series = []
    for lab in order_labels(s.points):
        pts = []
        for x, y, n, eid in s.points[lab]:
            where = f"{x_name} {x:.3f}, {y_name} {y:.3f}"
            tip = f"{eid} ({lab}): {where}" if n == 1 else f"{lab}: {n:,} examples at {where}"
            dx, dy = _jitter(eid, *spans) if s.sampled else (0.0, 0.0)
            pts.append(svg.Point(x + dx, y + dy, n, tip))
        series.append(svg.Series(lab, colours[lab], pts))
    return series


def pass_scatter(d: LabelsData, colours: dict[str, str]) -> str:
    series = _scatter_series(d.scatter, colours, "initial", "final")
    tau = d.info.tau
    return svg.scatter(series, x_label="initial pass@1", y_label="final pass@1 (mean over runs)",
                       aria="Initial against final pass@1 per example, coloured by label",
                       x_range=(-0.02, 1.02), y_range=(-0.02, 1.02), diagonal=True, guides=(tau, tau),
                       small=d.scatter.sampled)


def reward_by_label(d: DynamicsData, colours: dict[str, str]) -> str:
    series = [svg.Series(lab, colours[lab], [svg.Point(x, y) for x, y, _ in d.by_label[lab]], dash(lab))
              for lab in order_labels(d.by_label)]
    return svg.line_chart(series, x_label="training step", y_label="mean training reward",
                          aria="Mean training reward per label group over training steps", y_range=(0, 1),
                          x_range=_x_range(d.by_label.values()))


def reward_by_run(d: DynamicsData) -> str:
    series = []
    for i, run in enumerate(sorted(d.by_run)):
        style, opacity = RUN_STYLES[i % len(RUN_STYLES)]
        series.append(svg.Series(run, "currentColor", [svg.Point(x, y) for x, y, _ in d.by_run[run]], style,
                                 opacity))
    ys = [y for pts in d.by_run.values() for _, y, _ in pts]
    return svg.line_chart(series, x_label="training step", y_label="mean training reward",
                          aria="Mean training reward of each run over training steps",
                          y_range=svg.padded_range(ys, 0.1) if ys else (0, 1), x_range=_x_range(d.by_run.values()))


def data_map(s: ScatterData, colours: dict[str, str]) -> str:
    xs = [x for pts in s.points.values() for x, *_ in pts]
    x_max = max(0.5, max(xs, default=0.5) * 1.05)
    series = _scatter_series(s, colours, "variability", "confidence", (x_max, 1.0))
    return svg.scatter(series, x_label="variability (std of per-draw training accuracy)",
                       y_label="confidence (mean accuracy)",
                       aria="Data map: confidence against variability of per-draw training accuracy",
                       x_range=(-0.01, x_max), y_range=(-0.02, 1.02), small=s.sampled)


def _boxes(stats: list[BoxStats], colours: dict[str, str]) -> list[svg.Box]:
    by = {b.label: b for b in stats}
    return [svg.Box(lab, colours[lab], by[lab].n, by[lab].p05, by[lab].q1, by[lab].median, by[lab].q3, by[lab].p95,
                    by[lab].mean, by[lab].minimum, by[lab].maximum) for lab in order_labels(by)]


def gradsim_box(d: GradsimData, colours: dict[str, str]) -> str:
    return svg.boxplot(_boxes(d.boxes, colours), value_label="mean cosine similarity to all other examples",
                       aria="Distribution of each example's mean gradient similarity, per label group",
                       zero_line=True, decimals=4)


def gradsim_heatmap(d: GradsimData) -> str:
    return svg.heatmap(d.groups, d.groups, d.matrix, counts=d.pairs, decimals=4, value_label="mean cosine similarity",
                       aria="Mean gradient similarity between label groups")


def reasoning_box(d: ReasoningData, colours: dict[str, str]) -> str:
    return svg.boxplot(_boxes(d.boxes, colours), value_label="judge score per example (mean over judged rollouts, 0-5)",
                       aria="Distribution of the judge's reasoning score per label group", x_range=(-0.1, 5.1),
                       decimals=2)


def reasoning_scores(d: ReasoningData, colours: dict[str, str]) -> str:
    rows = []
    for lab in order_labels(d.histogram):
        counts = d.histogram[lab]
        n = sum(counts)
        if n:
            rows.append(svg.StackRow(lab, colours[lab], n, [c / n for c in counts]))
    return svg.stacked_shares(rows, [str(k) for k in range(6)], list(SCORE_COLOURS),
                              value_label="share of judged correct rollouts", legend_title="judge score",
                              aria="Share of judged correct rollouts at each judge score, per label group")


def reasoning_steps(d: ReasoningData, colours: dict[str, str]) -> str:
    series = [svg.Series(lab, colours[lab], [svg.Point(x, y) for x, y, _ in d.over_steps[lab]], dash(lab))
              for lab in order_labels(d.over_steps)]
    return svg.line_chart(series, x_label="training step of the judged rollout", y_label="mean judge score (0-5)",
                          aria="Mean judge score of correct rollouts over training, per label group", y_range=(0, 5),
                          x_range=_x_range(d.over_steps.values()))


def predicted_counts(d: PredictionsData, colours: dict[str, str]) -> str:
    bars = [svg.Bar(c["label"], colours[c["label"]], c["predicted"], f"{c['predicted']:,} ({c['share']:.0%})")
            for c in d.counts]
    return svg.hbars(bars, value_label="unlabelled examples, by their most probable label",
                     aria=f"Predicted labels of {d.n_predicted:,} unlabelled examples (prediction set {d.prediction_set})")
