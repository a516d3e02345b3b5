"""ReportConfig: every setting of the report, in one place (the CLI builds it from its flags)."""

from __future__ import annotations

from dataclasses import dataclass

from curator.errors import CuratorError


@dataclass
class ReportConfig:
    out: str = "report.html"  # the HTML file to write (replaced atomically)
    label_set: str | None = None  # label set to report (default: the latest by created_at)
    top_n: int = 5  # examples shown per label group
    rollouts_per_example: int = 3  # rollouts shown under each example
    max_points: int = 4000  # marks per scatter chart; beyond it points are binned on a coarser grid
    max_line_points: int = 200  # points per line; training steps are binned beyond it
    max_text_chars: int = 1200  # prompts, answers, completions and rationales are cut here (and say so)
    max_runs: int = 12  # runs drawn one line each in the per-run reward chart
    title: str | None = None  # page title (default: "curator report: <datasets>")

    def __post_init__(self) -> None:
        if self.top_n < 0 or self.rollouts_per_example < 0:
            raise CuratorError("--top-n and rollouts per example must be zero or more")
        if self.max_points < 10 or self.max_line_points < 2 or self.max_text_chars < 40 or self.max_runs < 1:
            raise CuratorError("report limits are too small: max_points >= 10, max_line_points >= 2, "
                               "max_text_chars >= 40, max_runs >= 1")
