"""Learnability labels, in SQL over `evals` and `history`, exactly as the published method defines them.

For the chosen train runs (default: every finished one) and threshold tau
(default 0.1) on pass@1, in this order of precedence:

- easy          initial pass@1 > tau
- never_solved  no correct rollout in any training step of any run
- learnable     final pass@1 > tau in every run
- unlearnable   final pass@1 <= tau in every run (and solved at least once in training)
- unstable      the runs disagree

Initial pass@1 comes from the runs' shared initial-model eval (`runs.initial_run`);
final pass@1 from each run's eval at its last step. Imported runs (another
trainer's logs, `curator import --initial-probe --final-probe`) are labelled the
same way once linked to their two probes; by default only curator's own train
runs are used, and imported ones when there are none. Every label row keeps the
inputs that decided it. The label set's id is a hash of tau and the runs, so
labelling again with the same inputs replaces the same rows (idempotent).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from curator.errors import CuratorError
from curator.store import Workspace, utcnow

LABELS = ("easy", "learnable", "unlearnable", "never_solved", "unstable")

LABEL_SQL = """
WITH chosen AS (
    SELECT run_id, steps, initial_run FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))
),
initial AS (
    SELECT example_id, n_correct::DOUBLE / n AS pass1
    FROM evals WHERE run_id = ? AND step = 0
),
final AS (
    SELECT e.run_id, e.example_id, e.n_correct::DOUBLE / e.n AS pass1
    FROM evals e JOIN chosen c ON e.run_id = c.run_id AND e.step = c.steps
),
final_agg AS (
    SELECT example_id, min(pass1) AS lo, max(pass1) AS hi, count(*) AS n_runs
    FROM final GROUP BY example_id
),
train AS (
    SELECT example_id, sum(n_correct) AS correct
    FROM history WHERE run_id IN (SELECT run_id FROM chosen) GROUP BY example_id
)
SELECT
    i.example_id,
    CASE
        WHEN i.pass1 > ? THEN 'easy'
        WHEN coalesce(t.correct, 0) = 0 THEN 'never_solved'
        WHEN f.lo > ? THEN 'learnable'
        WHEN f.hi <= ? THEN 'unlearnable'
        ELSE 'unstable'
    END AS label,
    i.pass1 AS initial_pass1,
    f.lo AS final_pass1_min,
    f.hi AS final_pass1_max,
    coalesce(t.correct, 0)::INTEGER AS train_correct
FROM initial i
JOIN final_agg f USING (example_id)
LEFT JOIN train t USING (example_id)
WHERE f.n_runs = (SELECT count(*) FROM chosen)
"""


@dataclass
class LabelConfig:
    tau: float = 0.1  # threshold on pass@1
    runs: tuple[str, ...] = ()  # train runs to intersect (default: every finished train run)
    k: tuple[int, ...] = (1, 4, 8, 32)  # pass@k reported among the scores

    def __post_init__(self) -> None:
        if not 0 <= self.tau < 1:
            raise CuratorError(f"--tau must be in [0, 1), got {self.tau}")
        if any(k < 1 for k in self.k):
            raise CuratorError("--k values must be at least 1")


@dataclass
class LabelSummary:
    label_set: str
    runs: list[str]
    tau: float
    counts: dict[str, int] = field(default_factory=dict)
    n_unlabelled: int = 0  # examples without an eval in every run


def chosen_runs(ws: Workspace, runs: tuple[str, ...]) -> tuple[list[str], str]:
    """The train runs to label from, and their shared initial-eval run."""
    if runs:
        found = {r[0]: r[1:] for r in ws.sql(
            "SELECT run_id, kind, status, initial_run FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(runs)]).fetchall()}
        missing = [r for r in runs if r not in found]
        if missing:
            raise CuratorError(f"no such run: {', '.join(missing)}; `curator sql \"SELECT run_id FROM runs\"` lists them")
        bad = [r for r, (kind, status, _) in found.items() if kind not in ("train", "import") or status != "finished"]
        if bad:
            raise CuratorError(f"runs {', '.join(bad)} are not finished train or import runs; finish them with "
                               "`curator train`")
        unlinked = [r for r, (kind, _, initial) in found.items() if kind == "import" and initial is None]
        if unlinked:
            raise CuratorError(f"imported runs {', '.join(unlinked)} have no initial and final probe; import them "
                               "again with --initial-probe and --final-probe (see `curator import --help`)")
        rows = [(r, found[r][2]) for r in runs]
    else:
        rows = ws.sql("SELECT run_id, initial_run FROM runs WHERE kind = 'train' AND status = 'finished' "
                      "ORDER BY run_id").fetchall()
        if not rows:  # no run of curator's own: imported runs linked to their probes
            rows = ws.sql("SELECT run_id, initial_run FROM runs WHERE kind = 'import' AND status = 'finished' "
                          "AND initial_run IS NOT NULL ORDER BY run_id").fetchall()
        if not rows:
            raise CuratorError("no finished train runs in the workspace; run `curator train` first, or import "
                               "another trainer's run with --initial-probe and --final-probe")
    initial = {r[1] for r in rows}
    if len(initial) != 1 or None in initial:
        raise CuratorError(
            "the runs do not share one initial-model eval (runs.initial_run differs); label them separately "
            "with --runs"
        )
    return [r[0] for r in rows], initial.pop()


def label_set_id(tau: float, runs: list[str]) -> str:
    blob = json.dumps({"tau": tau, "runs": sorted(runs)})
    return "ls-" + hashlib.sha256(blob.encode()).hexdigest()[:10]


def compute_labels(ws: Workspace, runs: list[str], initial_run: str, tau: float):
    """The label query's result as a DataFrame (reads only)."""
    return ws.df(LABEL_SQL, [runs, initial_run, tau, tau, tau]).sort_values("example_id", ignore_index=True)


def label(ws: Workspace, config: LabelConfig) -> LabelSummary:
    from curator.analysis.scores import compute_scores

    runs, initial = chosen_runs(ws, config.runs)
    ls = label_set_id(config.tau, runs)
    labels = compute_labels(ws, runs, initial, config.tau)
    scores = compute_scores(ws, runs, initial, config.k)
    n_examples = ws.sql("SELECT count(DISTINCT example_id) FROM evals WHERE run_id = ?", [initial]).fetchone()[0]
    with ws.transaction():
        for table in ("labels", "scores", "label_sets"):
            ws.execute(f"DELETE FROM {table} WHERE label_set = ?", [ls])
        ws.write("label_sets", _frame([{"label_set": ls, "tau": config.tau, "run_ids": json.dumps(runs),
                                         "config": json.dumps(asdict(config) | {"initial_run": initial}),
                                         "created_at": utcnow()}]))
        ws.write("labels", labels.assign(label_set=ls))
        ws.write("scores", scores.assign(label_set=ls))
    counts = {name: int((labels.label == name).sum()) for name in LABELS}
    return LabelSummary(ls, runs, config.tau, counts, n_examples - len(labels))


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)
