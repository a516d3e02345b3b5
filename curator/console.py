"""Terminal output: summary tables and progress bars, all silenced by --quiet.

Stages never print; they return summaries. The CLI hands those to the helpers
here. Progress bars go to stderr so that stdout stays parseable.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from curator.redact import redact


class Output:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False)

    def line(self, text: str) -> None:
        """A summary line: printed even when quiet."""
        self.out.print(redact(text), markup=False)

    def info(self, text: str) -> None:
        if not self.quiet:
            self.out.print(redact(text), markup=False)

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        if self.quiet:
            return
        t = Table(title=title, title_justify="left")
        for i, c in enumerate(columns):
            t.add_column(c, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*[redact(str(v)) for v in r])
        self.out.print(t)

    @contextlib.contextmanager
    def runs_progress(self, steps: int) -> Iterator["RunBars"]:
        """One bar per run: step, mean reward, kept-group fraction, rate."""
        if self.quiet:
            yield RunBars(None, steps)
            return
        bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.err, transient=False,
        )
        with bar:
            yield RunBars(bar, steps)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[callable]:
        """Yield `advance(n=1)`; draws a bar on stderr unless quiet."""
        if self.quiet:
            yield lambda n=1: None
            return
        bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=self.err, transient=True,
        )
        with bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)


class RunBars:
    """Callbacks for `curator.train`: a bar per run, created on its first message."""

    def __init__(self, bar: Progress | None, steps: int):
        self.bar, self.steps, self.tasks = bar, steps, {}

    def _task(self, run_id: str, total: int | None):
        if run_id not in self.tasks:
            self.tasks[run_id] = self.bar.add_task(run_id, total=total, info="")
        return self.tasks[run_id]

    def step(self, run_id: str, step: int, stats: dict) -> None:
        if self.bar is None:
            return
        t = self._task(run_id, self.steps)
        kept = stats["kept_groups"] / max(1, stats["drawn_groups"])
        self.bar.update(t, completed=step,
                        info=f"reward {stats['mean_reward']:.3f}  kept {kept:.0%}  len {stats['mean_length']:.0f}")

    def progress(self, run_id: str, k: int) -> None:
        if self.bar is None:
            return
        self.bar.update(self._task(run_id, None), advance=k, info="evaluating")
