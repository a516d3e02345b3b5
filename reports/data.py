"""What each report section shows, aggregated in DuckDB before anything is drawn.

One function per section. Each reads the workspace with plain SELECTs (GROUP BY,
quantiles, binning on a grid, ranking with window functions) and returns a small
dataclass, or None when the section's tables hold nothing. The result sizes are
bounded by the config (points per chart, points per line, examples per group),
not by the workspace: 50,000 examples become at most `max_points` marks.

Everything is ordered explicitly (ties broken by ids or by md5 of the id), so the
same workspace always gives the same data and therefore the same bytes of HTML.
Tables missing from an older workspace are treated as empty.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from curator.errors import CuratorError
from curator.reports.config import ReportConfig
from curator.reports.palette import order_labels

TRAIN_SETTINGS = (  # runs.config keys shown as key settings, in this order
    ("steps", "steps"), ("prompts_per_step", "prompts per step"), ("group_size", "group size G"),
    ("lr", "learning rate"), ("clip_low", "clip low"), ("clip_high", "clip high"), ("kl_coef", "KL coef"),
    ("minibatches", "minibatches"), ("dynamic_sampling", "dynamic sampling"), ("lora", "LoRA"),
    ("max_new_tokens", "max new tokens"), ("keep_completions", "kept completions"),
    ("eval.n", "eval samples n"), ("eval.temperature", "eval temperature"),
)
MIN_JUDGED = 5  # a point of the judge-score-over-training line needs this many judged rollouts


class Reader:
    """The workspace, seen through the tables it actually has."""

    def __init__(self, ws):
        self.ws = ws
        self.tables = {r[0] for r in ws.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        self._filled: dict[str, bool] = {}

    def filled(self, *tables: str) -> bool:
        """Every table named exists and has at least one row."""
        for t in tables:
            if t not in self._filled:
                self._filled[t] = t in self.tables and bool(self.ws.sql(f'SELECT 1 FROM "{t}" LIMIT 1').fetchall())
            if not self._filled[t]:
                return False
        return True

    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        return self.ws.sql(query, params).fetchall()

    def one(self, query: str, params: list | None = None):
        row = self.ws.sql(query, params).fetchone()
        return row[0] if row else None


def _json(value, default):
    if value is None:
        return default
    if isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default


def _dig(obj, dotted: str):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def show_value(v) -> str:
    """A config value as a person reads it (deterministic)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list) and all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in v):
        return ", ".join(show_value(x) for x in v)
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def cut(text, limit: int) -> tuple[str, int | None]:
    """(text, None) or (its first `limit` characters, the full length)."""
    if text is None:
        return "", None
    text = str(text)
    return (text, None) if len(text) <= limit else (text[:limit], len(text))


# -- context: which label set ----------------------------------------------------------


@dataclass
class LabelSetInfo:
    label_set: str
    tau: float
    run_ids: list[str]
    created_at: str
    n_labelled: int


def label_set(r: Reader, config: ReportConfig) -> LabelSetInfo | None:
    if not r.filled("label_sets"):
        if config.label_set:
            raise CuratorError(f"no label set {config.label_set!r} in the workspace; run `curator label` first")
        return None
    if config.label_set:
        row = r.sql("SELECT label_set, tau, run_ids, created_at FROM label_sets WHERE label_set = ?",
                    [config.label_set])
        if not row:
            raise CuratorError(f"no label set {config.label_set!r}; `curator sql \"SELECT * FROM label_sets\"` "
                               "lists them")
    else:
        row = r.sql("SELECT label_set, tau, run_ids, created_at FROM label_sets "
                    "ORDER BY created_at DESC, label_set LIMIT 1")
    ls, tau, runs, created = row[0]
    n = r.one("SELECT count(*) FROM labels WHERE label_set = ?", [ls]) if "labels" in r.tables else 0
    return LabelSetInfo(ls, float(tau), [str(x) for x in _json(runs, [])], str(created)[:19], int(n or 0))


# -- overview ---------------------------------------------------------------------------------


@dataclass
class OverviewData:
    datasets: list[dict]
    n_examples: int
    n_quarantined: int
    quarantine: list[dict]  # reason, n, example (raw row, cut)
    runs: list[dict]
    n_runs: int
    settings: list[tuple[str, str]]  # key settings shared by the train runs, or "varies"
    totals: list[tuple[str, int]]
    as_of: str  # the newest timestamp in the workspace (not the time of rendering: renders stay identical)
    imports: list[dict] = field(default_factory=list)  # runs read from another trainer's logs (kind 'import')
    n_imports: int = 0


def overview(r: Reader, config: ReportConfig, info: LabelSetInfo | None = None) -> OverviewData:
    datasets = []
    if "datasets" in r.tables:
        for (name, source, split, revision, mapping, n_rows, n_kept, n_q, last) in r.sql(
                "SELECT dataset, source, split, revision, mapping, n_rows, n_kept, n_quarantined, last_ingested_at "
                "FROM datasets ORDER BY dataset"):
            m = _json(mapping, {})
            fields = ([(k, show_value(v)) for k, v in sorted(m.items(), key=lambda kv: str(kv[0]))
                       if show_value(v) != ""] if isinstance(m, dict) else [])
            datasets.append({"name": name, "source": source, "split": split or "", "revision": revision or "",
                             "mapping": fields, "rows": n_rows, "kept": n_kept, "quarantined": n_q,
                             "ingested": str(last)[:19]})
    n_examples = r.one("SELECT count(*) FROM examples") if "examples" in r.tables else 0
    quarantine, n_q = [], 0
    if r.filled("quarantine"):
        n_q = r.one("SELECT count(*) FROM quarantine")
        for reason, n, raw in r.sql(
                "WITH parts AS (SELECT trim(unnest(string_split(reason, '; '))) AS reason, dataset, row_index, raw "
                "FROM quarantine) "
                "SELECT reason, count(*) AS n, arg_min(raw, (dataset, row_index)) FROM parts "
                "GROUP BY reason ORDER BY n DESC, reason LIMIT 12"):
            text, full = cut(raw, 240)
            quarantine.append({"reason": reason, "n": n, "example": text, "cut": full})
    runs, settings, n_runs = [], [], 0
    imports, n_imports = [], 0
    if r.filled("runs"):
        n_runs = r.one("SELECT count(*) FROM runs")
        cols = {c[0] for c in r.sql("SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'")}
        extra = ", ".join(c if c in cols else f"NULL AS {c}" for c in ("steps", "last_step"))
        rows = r.sql(f"SELECT run_id, kind, model, backend, seed, config, status, {extra} FROM runs "
                     "ORDER BY CASE kind WHEN 'probe' THEN 0 WHEN 'train' THEN 1 ELSE 2 END, run_id LIMIT 60")
        configs = []
        for run_id, kind, model, backend, seed, cfg, status, steps, last_step in rows:
            c = _json(cfg, {})
            if kind == "train":
                configs.append(c if isinstance(c, dict) else {})
            runs.append({"run_id": run_id, "kind": kind, "model": model or "", "backend": backend or "",
                         "seed": "" if seed is None else seed, "status": status,
                         "steps": "" if steps is None else steps,
                         "done": "" if last_step is None else last_step})
        for key, name in TRAIN_SETTINGS:
            vals = sorted({show_value(_dig(c, key)) for c in configs} - {""})
            if vals:
                settings.append((name, vals[0] if len(vals) == 1 else "varies: " + ", ".join(vals[:4])))
        imports, n_imports = imported_runs(r, cols, info)
    totals = []
    for table, what in (("examples", "examples"), ("quarantine", "quarantined rows"), ("runs", "runs"),
                        ("history", "history rows (example x step)"), ("evals", "eval rows"),
                        ("rollouts", "stored rollouts"), ("label_sets", "label sets"),
                        ("gradsim", "gradient-similarity rows"), ("judgments", "judgments"),
                        ("prediction_sets", "prediction sets"), ("predictions", "predicted labels"),
                        ("exports", "exports")):
        if table in r.tables:
            totals.append((what, int(r.one(f'SELECT count(*) FROM "{table}"'))))
    stamps = []
    for table, col in (("datasets", "last_ingested_at"), ("runs", "started_at"), ("runs", "finished_at"),
                       ("label_sets", "created_at"), ("judgments", "created_at"), ("exports", "created_at"),
                       ("gradient_configs", "created_at"), ("prediction_sets", "created_at")):
        if table in r.tables:
            stamps.append(r.one(f"SELECT max({col}) FROM {table}"))
    stamps = [s for s in stamps if s is not None]
    return OverviewData(datasets, int(n_examples or 0), int(n_q or 0), quarantine, runs, int(n_runs or 0), settings,
                        totals, str(max(stamps))[:19] if stamps else "", imports, n_imports)


MAX_IMPORTS = 30  # imported runs listed
MAX_WARNINGS = 20  # warnings listed per imported run


def imported_runs(r: Reader, run_cols: set[str], info: LabelSetInfo | None) -> tuple[list[dict], int]:
    """Runs read from another trainer's logs: importer, source, what their history holds, links, warnings."""
    n = int(r.one("SELECT count(*) FROM runs WHERE kind = 'import'") or 0)
    if not n:
        return [], 0
    initial = "initial_run" if "initial_run" in run_cols else "NULL AS initial_run"
    rows = r.sql(f"SELECT run_id, backend, model, config, {initial} FROM runs WHERE kind = 'import' "
                 f"ORDER BY run_id LIMIT {MAX_IMPORTS}")
    seen = {}
    if r.filled("history"):
        for run, steps, last, n_ex, n_done in r.sql(
                "SELECT run_id, count(DISTINCT step), max(step), count(DISTINCT example_id), sum(n) FROM history "
                "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY run_id ORDER BY run_id",
                [[x[0] for x in rows]]):
            seen[run] = (int(steps), int(last), int(n_ex), int(n_done or 0))
    labelled = set(info.run_ids) if info else set()
    out = []
    for run_id, backend, model, cfg, initial_run in rows:
        c = _json(cfg, {})
        c = c if isinstance(c, dict) else {}
        source, source_cut = cut(show_value(c.get("source")), 200)
        warnings = c.get("warnings") if isinstance(c.get("warnings"), list) else []
        shown = []
        for w in warnings[:MAX_WARNINGS]:
            text, full = cut(show_value(w), 400)
            shown.append(text + ("\u2026" if full else ""))
        final = c.get("final_probe")
        steps, last, n_ex, n_done = seen.get(run_id, (0, None, 0, 0))
        out.append({"run_id": run_id, "importer": backend or show_value(c.get("importer")), "model": model or "",
                    "source": source, "source_cut": source_cut, "steps": steps, "last_step": last,
                    "examples": n_ex, "completions": n_done, "initial": initial_run or "",
                    "final": show_value(final) if final else "", "labelled": run_id in labelled,
                    "n_warnings": len(warnings), "warnings": shown})
    return out, n


# -- labels --------------------------------------------------------------------------------------


@dataclass
class ScatterData:
    points: dict[str, list[tuple[float, float, int, str]]]  # label -> (x, y, count, first example id)
    n_examples: int
    n_marks: int
    sampled: bool  # True: a sample of single examples (count 1 each); False: every example, equal spots merged


def scatter_points(r: Reader, query: str, params: list, max_points: int) -> ScatterData:
    """Points for a scatter chart of (label, x, y, example_id) rows, at most about max_points of them.

    Up to max_points examples, every example is drawn, and examples at equal (label, x, y) are merged into one
    mark with a count (drawn larger). Beyond it a deterministic sample is drawn: each label gets a share of
    max_points proportional to its size (at least 5% of max_points, or all of a smaller label), taken in
    md5(example_id) order.
    """
    base = f"SELECT label, x, y, example_id FROM ({query}) WHERE x IS NOT NULL AND y IS NOT NULL"
    n = int(r.one(f"SELECT count(*) FROM ({base})", params) or 0)
    points: dict[str, list] = {}
    if n <= max_points:
        rows = r.sql(f"SELECT label, x, y, count(*), min(example_id) FROM ({base}) GROUP BY label, x, y "
                     "ORDER BY label, x, y", params)
        sampled = False
    else:
        floor = max(1, max_points // 20)
        rows = r.sql(
            f"SELECT label, x, y, 1, example_id FROM (SELECT *, row_number() OVER (PARTITION BY label "
            f"ORDER BY md5(example_id), example_id) AS rk, count(*) OVER (PARTITION BY label) AS n_label "
            f"FROM ({base})) WHERE rk <= greatest(floor(n_label * {int(max_points)} / {n}), least(n_label, {floor})) "
            f"ORDER BY label, md5(example_id), example_id", params)
        sampled = True
    for lab, x, y, c, eid in rows:
        points.setdefault(lab, []).append((float(x), float(y), int(c), eid))
    return ScatterData(points, n, len(rows), sampled)


@dataclass
class LabelsData:
    info: LabelSetInfo
    counts: list[dict]  # label, n, share, initial, final_min, final_max, train_correct (means)
    total: int
    scatter: ScatterData


def labels(r: Reader, config: ReportConfig, info: LabelSetInfo | None) -> LabelsData | None:
    if info is None or info.n_labelled == 0:
        return None
    counts = [{"label": lab, "n": n, "share": n / info.n_labelled, "initial": i, "final_min": lo, "final_max": hi,
               "train_correct": tc}
              for lab, n, i, lo, hi, tc in r.sql(
                  "SELECT label, count(*), avg(initial_pass1), avg(final_pass1_min), avg(final_pass1_max), "
                  "avg(train_correct) FROM labels WHERE label_set = ? GROUP BY label ORDER BY label",
                  [info.label_set])]
    rank = {lab: i for i, lab in enumerate(order_labels(c["label"] for c in counts))}
    counts.sort(key=lambda c: rank[c["label"]])
    final = "(l.final_pass1_min + l.final_pass1_max) / 2"
    if "scores" in r.tables:
        query = (f"SELECT l.label, l.initial_pass1 AS x, coalesce(s.final_pass1_mean, {final}) AS y, l.example_id "
                 "FROM labels l LEFT JOIN scores s ON s.label_set = l.label_set AND s.example_id = l.example_id "
                 "WHERE l.label_set = ?")
    else:
        query = f"SELECT l.label, l.initial_pass1 AS x, {final} AS y, l.example_id FROM labels l WHERE l.label_set = ?"
    scatter = scatter_points(r, query, [info.label_set], config.max_points)
    return LabelsData(info, counts, info.n_labelled, scatter)


# -- learning dynamics ---------------------------------------------------------------------------


@dataclass
class DynamicsData:
    by_label: dict[str, list[tuple[float, float, int]]]  # label -> (step, mean reward, draws)
    by_run: dict[str, list[tuple[float, float, int]]]  # run -> (step, mean reward, draws)
    n_runs_total: int  # train runs with history (by_run may show fewer)
    bin: int  # steps per point
    window: int  # steps in the moving-average window (1: no smoothing)
    n_steps: int
    datamap: ScatterData | None
    imported: list[str] = field(default_factory=list)  # shown runs read from another trainer's logs
    labelled_imports: list[str] = field(default_factory=list)  # of which in the label set (in by_label too)


def _bin(n_steps: int, max_points: int) -> int:
    return max(1, math.ceil(n_steps / max_points))


def smooth(points: list[tuple[float, float, int]], half: int) -> list[tuple[float, float, int]]:
    """Centred moving average over 2*half+1 points, weighted by each point's count (draws or judgments)."""
    if half <= 0:
        return points
    out = []
    for i, (x, _, n) in enumerate(points):
        window = points[max(0, i - half): i + half + 1]
        w = sum(c for _, _, c in window)
        out.append((x, sum(y * c for _, y, c in window) / w if w else points[i][1], n))
    return out


def _half_window(n_points: int, share: float = 0.05) -> int:
    """Half-width of the smoothing window: about `share` of the line on each side, at most 10 points."""
    return min(10, int(n_points * share))


def dynamics(r: Reader, config: ReportConfig, info: LabelSetInfo | None) -> DynamicsData | None:
    if not r.filled("history"):
        return None
    n_steps = int(r.one("SELECT count(DISTINCT step) FROM history") or 0)
    max_step = int(r.one("SELECT max(step) FROM history") or 0)
    b = _bin(max_step, config.max_line_points)
    by_label: dict[str, list] = {}
    if info is not None and info.n_labelled:
        runs = info.run_ids or [x[0] for x in r.sql("SELECT DISTINCT run_id FROM history ORDER BY 1")]
        for lab, x, y, n in r.sql(
                f"SELECT l.label, (min(h.step) + max(h.step)) / 2.0, avg(h.n_correct::DOUBLE / h.n), count(*) "
                f"FROM history h JOIN labels l ON l.example_id = h.example_id AND l.label_set = ? "
                f"WHERE h.n > 0 AND h.run_id IN (SELECT unnest(?::VARCHAR[])) "
                f"GROUP BY l.label, h.step // {b} ORDER BY l.label, h.step // {b}", [info.label_set, runs]):
            by_label.setdefault(lab, []).append((float(x), float(y), int(n)))
    run_ids = [x[0] for x in r.sql("SELECT DISTINCT run_id FROM history ORDER BY 1")]
    # the label set's runs first (curator-trained or imported alike), then the others by id
    with_history = set(run_ids)
    preferred = [x for x in dict.fromkeys(info.run_ids if info else []) if x in with_history]
    first = set(preferred)
    shown = (preferred + [x for x in run_ids if x not in first])[: config.max_runs]
    imports: set[str] = set()
    if "runs" in r.tables:
        imports = {x[0] for x in r.sql("SELECT run_id FROM runs WHERE kind = 'import' AND run_id IN "
                                       "(SELECT unnest(?::VARCHAR[]))", [run_ids])}
    by_run: dict[str, list] = {}
    for run, x, y, n in r.sql(
            f"SELECT run_id, (min(step) + max(step)) / 2.0, avg(n_correct::DOUBLE / n), count(*) FROM history "
            f"WHERE n > 0 AND run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY run_id, step // {b} "
            f"ORDER BY run_id, step // {b}", [shown]):
        by_run.setdefault(run, []).append((float(x), float(y), int(n)))
    n_points = math.ceil(max_step / b)
    half = _half_window(n_points)
    by_label = {k: smooth(v, half) for k, v in by_label.items()}
    by_run = {k: smooth(v, half) for k, v in by_run.items()}
    datamap = None
    if info is not None and r.filled("scores"):
        query = ("SELECT l.label, s.variability AS x, s.confidence AS y, l.example_id FROM scores s "
                 "JOIN labels l ON l.label_set = s.label_set AND l.example_id = s.example_id WHERE s.label_set = ?")
        dm = scatter_points(r, query, [info.label_set], config.max_points)
        datamap = dm if dm.n_examples else None
    labelled_imports = sorted(x for x in preferred if x in imports) if by_label else []
    return DynamicsData(by_label, by_run, len(run_ids), b, (2 * half + 1) * b, n_steps, datamap,
                        sorted(x for x in by_run if x in imports), labelled_imports)


# -- gradient similarity -----------------------------------------------------------------------------


@dataclass
class BoxStats:
    label: str
    n: int
    p05: float
    q1: float
    median: float
    q3: float
    p95: float
    mean: float
    minimum: float
    maximum: float


def box_stats(r: Reader, query: str, params: list) -> list[BoxStats]:
    """Per-label distribution summaries of (label, v) rows, computed in SQL."""
    out = []
    for lab, n, qs, mean, lo, hi in r.sql(
            f"SELECT label, count(*), quantile_cont(v, [0.05, 0.25, 0.5, 0.75, 0.95]), avg(v), min(v), max(v) "
            f"FROM ({query}) WHERE v IS NOT NULL GROUP BY label ORDER BY label", params):
        out.append(BoxStats(lab, int(n), *(float(q) for q in qs), float(mean), float(lo), float(hi)))
    return out


@dataclass
class GradsimData:
    config_id: str
    config: list[tuple[str, str]]
    boxes: list[BoxStats]
    groups: list[str]
    matrix: dict[tuple[str, str], float | None]
    pairs: dict[tuple[str, str], int]
    n_examples: int
    n_labelled_without: int  # labelled examples with no vector (no correct rollout to take gradients of)


def gradsim(r: Reader, config: ReportConfig, info: LabelSetInfo | None) -> GradsimData | None:
    if not r.filled("gradsim"):
        return None
    ls = info.label_set if info else None
    has_cfg = "gradient_configs" in r.tables
    cols = {c[0] for c in r.sql("SELECT column_name FROM information_schema.columns WHERE table_name = 'gradsim'")}
    has_label = "label" in cols and "label_set" in cols
    order = "max(c.created_at) DESC NULLS LAST, " if has_cfg else ""
    join = "LEFT JOIN gradient_configs c USING (config_id) " if has_cfg else ""
    where = "WHERE g.label_set = ? " if (has_label and ls) else ""
    pick = r.sql(f"SELECT g.config_id FROM gradsim g {join}{where}GROUP BY g.config_id "
                 f"ORDER BY {order}count(*) DESC, g.config_id LIMIT 1", [ls] if where else [])
    if not pick:
        pick = r.sql(f"SELECT g.config_id FROM gradsim g {join}GROUP BY g.config_id "
                     f"ORDER BY {order}count(*) DESC, g.config_id LIMIT 1")
    cid = pick[0][0]
    own = "g.label" if has_label else "NULL"
    if ls:
        lab_join = "LEFT JOIN labels l ON l.example_id = g.example_id AND l.label_set = ?"
        params = [ls, cid]
    else:
        lab_join, params = "LEFT JOIN (SELECT NULL AS label) l ON true", [cid]
    same_ls = " AND (g.label_set = ? OR g.label_set IS NULL)" if (has_label and ls) else ""
    if same_ls:
        params.append(ls)
    query = (f"SELECT coalesce(l.label, {own}, 'unlabelled') AS label, g.mean_sim AS v FROM gradsim g {lab_join} "
             f"WHERE g.config_id = ?{same_ls}")
    boxes = box_stats(r, query, params)
    n_examples = sum(b.n for b in boxes)
    n_without = 0
    if ls:
        n_without = int(r.one("SELECT count(*) FROM labels l WHERE l.label_set = ? AND l.example_id NOT IN "
                              "(SELECT example_id FROM gradsim WHERE config_id = ?)", [ls, cid]) or 0)
    cfg = []
    if has_cfg:
        raw = r.one("SELECT config FROM gradient_configs WHERE config_id = ?", [cid])
        c = _json(raw, {})
        if isinstance(c, dict):
            cfg = [(k, show_value(v)) for k, v in sorted(c.items())][:12]
    matrix, pairs, groups = {}, {}, []
    if r.filled("gradsim_groups"):
        rows = r.sql("SELECT group_a, group_b, mean_sim, n_pairs FROM gradsim_groups WHERE config_id = ? "
                     + ("AND label_set = ? " if ls else "") + "ORDER BY group_a, group_b",
                     [cid, ls] if ls else [cid])
        if not rows and ls:  # similarity computed against another label set: show it as stored
            rows = r.sql("SELECT group_a, group_b, mean_sim, n_pairs FROM gradsim_groups WHERE config_id = ? "
                         "AND label_set = (SELECT min(label_set) FROM gradsim_groups WHERE config_id = ?) "
                         "ORDER BY group_a, group_b", [cid, cid])
        for a, b_, v, n in rows:
            matrix[(a, b_)] = None if v is None or not math.isfinite(v) else float(v)
            pairs[(a, b_)] = int(n)
        seen = {a for a, _ in matrix} | {b_ for _, b_ in matrix}
        groups = order_labels(seen)
    return GradsimData(cid, cfg, boxes, groups, matrix, pairs, n_examples, n_without)


# -- reasoning quality ---------------------------------------------------------------------------------


@dataclass
class ReasoningData:
    judge: str
    model: str
    rubric_version: str
    boxes: list[BoxStats]  # per-example mean score, per label
    table: list[dict]  # per label: judged rollouts, mean, std, share perfect, share <= 2, failed
    histogram: dict[str, list[int]]  # label -> judged rollouts with score 0, 1, .., 5 (rounded)
    over_steps: dict[str, list[tuple[float, float, int]]]  # label -> (step, mean score, judged); may be empty
    step_bin: int
    window: int  # steps in the moving-average window of over_steps
    n_examples: int


def chosen_judge(r: Reader) -> tuple[str, str, str] | None:
    if not r.filled("reasoning"):
        return None
    latest = ""
    if "judgments" in r.tables:
        latest = ("(SELECT max(j.created_at) FROM judgments j WHERE j.judge = x.judge "
                  "AND coalesce(j.model, '') = x.model AND j.rubric_version = x.rubric_version) DESC NULLS LAST, ")
    row = r.sql(f"SELECT judge, model, rubric_version FROM (SELECT judge, model, rubric_version, count(*) AS n "
                f"FROM reasoning GROUP BY ALL) x ORDER BY {latest}n DESC, judge, model, rubric_version LIMIT 1")
    return tuple(row[0]) if row else None


def reasoning(r: Reader, config: ReportConfig, info: LabelSetInfo | None) -> ReasoningData | None:
    chosen = chosen_judge(r)
    if chosen is None:
        return None
    judge, model, rubric = chosen
    ls = info.label_set if info else None
    if ls:
        lab_join, lab_params = "LEFT JOIN labels l ON l.example_id = x.example_id AND l.label_set = ?", [ls]
    else:
        lab_join, lab_params = "LEFT JOIN (SELECT NULL AS label) l ON true", []
    query = (f"SELECT coalesce(l.label, 'unlabelled') AS label, x.mean_score AS v FROM reasoning x {lab_join} "
             "WHERE x.judge = ? AND x.model = ? AND x.rubric_version = ? AND x.n_judged > 0")
    boxes = box_stats(r, query, lab_params + [judge, model, rubric])
    if not boxes:
        return None
    table, over, b, hist = [], {}, 1, {}
    if r.filled("judgments"):
        jq = (f"FROM judgments x {lab_join} WHERE x.judge = ? AND coalesce(x.model, '') = ? "
              "AND x.rubric_version = ?")
        params = lab_params + [judge, model, rubric]
        for lab, n, mean, std, perfect, low, failed in r.sql(
                f"SELECT coalesce(l.label, 'unlabelled') AS label, count(*) FILTER (WHERE x.status = 'ok'), "
                f"avg(x.score) FILTER (WHERE x.status = 'ok'), stddev_pop(x.score) FILTER (WHERE x.status = 'ok'), "
                f"avg((x.score >= 5)::INTEGER) FILTER (WHERE x.status = 'ok'), "
                f"avg((x.score <= 2)::INTEGER) FILTER (WHERE x.status = 'ok'), "
                f"count(*) FILTER (WHERE x.status <> 'ok') {jq} GROUP BY 1 ORDER BY 1", params):
            table.append({"label": lab, "n": n, "mean": mean, "std": std, "perfect": perfect, "low": low,
                          "failed": failed})
        for lab, score, n in r.sql(
                f"SELECT coalesce(l.label, 'unlabelled') AS label, least(greatest(round(x.score), 0), 5)::INTEGER, "
                f"count(*) {jq} AND x.status = 'ok' AND x.score IS NOT NULL GROUP BY ALL ORDER BY 1, 2", params):
            hist.setdefault(lab, [0] * 6)[score] += int(n)
        steps_per_label = r.one(f"SELECT max(k) FROM (SELECT count(DISTINCT x.step) AS k {jq} "
                                "AND x.status = 'ok' AND x.step IS NOT NULL GROUP BY coalesce(l.label, 'unlabelled'))",
                                params) or 0
        if steps_per_label > 1:
            max_step = int(r.one(f"SELECT max(x.step) {jq} AND x.step IS NOT NULL", params) or 1)
            b = _bin(max_step, 15)
            for lab, x, y, n in r.sql(
                    f"SELECT coalesce(l.label, 'unlabelled') AS label, (min(x.step) + max(x.step)) / 2.0, "
                    f"avg(x.score), count(*) {jq} AND x.status = 'ok' AND x.step IS NOT NULL "
                    f"GROUP BY 1, x.step // {b} HAVING count(*) >= {MIN_JUDGED} ORDER BY 1, x.step // {b}", params):
                over.setdefault(lab, []).append((float(x), float(y), int(n)))
            over = {k: v for k, v in over.items() if len(v) > 1}
    half = 1 if over else 0
    over = {k: smooth(v, half) for k, v in over.items()}
    return ReasoningData(judge, model, rubric, boxes, table, hist, over, b, (2 * half + 1) * b,
                         sum(x.n for x in boxes))


# -- examples --------------------------------------------------------------------------------------------

# What "most telling" means for each label: the sort key (most telling first), in SQL over the ranked rows.
TELLING = {
    "easy": ("highest initial pass@1", "-coalesce(initial, 0)"),
    "learnable": ("largest gain from initial to final pass@1", "-(coalesce(final_mean, 0) - coalesce(initial, 0))"),
    "unlearnable": ("most correct rollouts during training, yet the lowest final pass@1",
                    "-coalesce(train_correct, 0)"),
    "never_solved": ("drawn most often in training without a single correct rollout", "-coalesce(draws, 0)"),
    "unstable": ("largest disagreement between runs (final pass@1 max - min)",
                 "-(coalesce(final_max, 0) - coalesce(final_min, 0))"),
}
OTHER_TELLING = ("a deterministic sample (by id hash)", "0")


@dataclass
class Rollout:
    run_id: str
    phase: str
    step: int
    status: str
    reward: float
    length: int
    completion: str
    completion_cut: int | None
    score: float | None
    judge_status: str | None
    rationale: str
    rationale_cut: int | None


@dataclass
class Example:
    example_id: str
    label: str
    dataset: str
    prompt: str
    prompt_cut: int | None
    answer: str
    answer_cut: int | None
    meta: list[tuple[str, str]]
    initial: float | None
    final_min: float | None
    final_max: float | None
    final_mean: float | None
    train_correct: int | None
    draws: int | None
    rollouts: list[Rollout] = field(default_factory=list)


@dataclass
class ExamplesData:
    groups: list[tuple[str, str, int, list[Example]]]  # label, what "telling" means, examples in the group, shown
    judge: tuple[str, str, str] | None


def examples(r: Reader, config: ReportConfig, info: LabelSetInfo | None) -> ExamplesData | None:
    if info is None or info.n_labelled == 0 or config.top_n == 0 or not r.filled("examples"):
        return None
    has_scores = "scores" in r.tables
    s_cols = ("s.final_pass1_mean AS final_mean, s.train_draws AS draws" if has_scores
              else "NULL::DOUBLE AS final_mean, NULL::INTEGER AS draws")
    s_join = "LEFT JOIN scores s ON s.label_set = l.label_set AND s.example_id = l.example_id" if has_scores else ""
    key1 = "CASE label " + " ".join(f"WHEN '{lab}' THEN {expr}" for lab, (_, expr) in TELLING.items()) + " ELSE 0 END"
    key2 = "CASE label WHEN 'unlearnable' THEN coalesce(final_max, 0) ELSE 0 END"
    rows = r.sql(
        f"WITH base AS (SELECT l.label, l.example_id, e.dataset, e.prompt, e.answer, e.meta, "
        f"l.initial_pass1 AS initial, l.final_pass1_min AS final_min, l.final_pass1_max AS final_max, "
        f"{s_cols}, "
        f"l.train_correct FROM labels l JOIN examples e ON e.example_id = l.example_id {s_join} "
        f"WHERE l.label_set = ?) "
        f"SELECT * EXCLUDE (rk) FROM (SELECT *, row_number() OVER (PARTITION BY label ORDER BY {key1}, {key2}, "
        f"md5(example_id)) AS rk FROM base) WHERE rk <= ? ORDER BY label, rk",
        [info.label_set, config.top_n])
    group_sizes = dict(r.sql("SELECT label, count(*) FROM labels WHERE label_set = ? GROUP BY label",
                             [info.label_set]))
    chosen_j = chosen_judge(r)
    by_label: dict[str, list[Example]] = {}
    ids = []
    for (lab, eid, dataset, prompt, answer, meta, initial, fmin, fmax, fmean, draws, tcorrect) in rows:
        p, pc = cut(prompt, config.max_text_chars)
        a, ac = cut(answer, 300)
        m = _json(meta, {})
        meta_items = []
        if isinstance(m, dict):
            for k, v in sorted(m.items(), key=lambda kv: str(kv[0]))[:6]:
                text, full = cut(show_value(v), 120)
                meta_items.append((str(k)[:60], text + ("\u2026" if full else "")))
        if fmean is None and fmin is not None and fmax is not None:
            fmean = (fmin + fmax) / 2
        by_label.setdefault(lab, []).append(Example(eid, lab, dataset, p, pc, a, ac, meta_items, initial, fmin, fmax,
                                                    fmean, tcorrect, draws))
        ids.append(eid)
    if ids and config.rollouts_per_example and r.filled("rollouts"):
        if chosen_j and "judgments" in r.tables:
            j_join = ("LEFT JOIN (SELECT example_id, run_id, step, sample_index, "
                      "arg_max(score, created_at) AS score, arg_max(status, created_at) AS jstatus, "
                      "arg_max(rationale, created_at) AS rationale FROM judgments WHERE judge = ? "
                      "AND coalesce(model, '') = ? AND rubric_version = ? GROUP BY ALL) j "
                      "ON j.example_id = x.example_id AND j.run_id = x.run_id AND j.step = x.step "
                      "AND j.sample_index = x.sample_index")
            j_cols, j_params = "j.score, j.jstatus, j.rationale", list(chosen_j)
        else:
            j_join, j_cols, j_params = "", "NULL AS score, NULL AS jstatus, NULL AS rationale", []
        found: dict[str, list[Rollout]] = {}
        for (eid, run, phase, step, status, reward, length, completion, score, jstatus, rationale) in r.sql(
                f"SELECT * EXCLUDE (rk) FROM (SELECT x.example_id, x.run_id, x.phase, x.step, x.status, x.reward, "
                f"x.length, x.completion, {j_cols}, row_number() OVER (PARTITION BY x.example_id ORDER BY "
                f"({'j.score' if j_join else 'NULL'}) IS NULL, {'j.score' if j_join else 'NULL'} ASC, "
                f"x.phase = 'train' DESC, x.step DESC, x.run_id, x.sample_index) AS rk "
                f"FROM rollouts x {j_join} WHERE x.example_id IN (SELECT unnest(?::VARCHAR[]))) "
                f"WHERE rk <= ? ORDER BY example_id, rk", j_params + [ids, config.rollouts_per_example]):
            c, cc = cut(completion, config.max_text_chars)
            ra, rc = cut(rationale, 600)
            found.setdefault(eid, []).append(Rollout(run, phase, int(step), status, float(reward), int(length), c, cc,
                                                     None if score is None else float(score), jstatus, ra, rc))
        for exs in by_label.values():
            for ex in exs:
                ex.rollouts = found.get(ex.example_id, [])
    groups = []
    for lab in order_labels(by_label):
        what = TELLING.get(lab, OTHER_TELLING)[0]
        groups.append((lab, what, int(group_sizes.get(lab, 0)), by_label[lab]))
    return ExamplesData(groups, chosen_j)


# -- predictions -------------------------------------------------------------------------------------------

CONFIDENT_PER_LABEL = 3  # most confident predictions shown per predicted label
LIKELY = 0.5  # a label's probability at which an example counts as "likely" that label
MAX_LISTED = 60  # features, left-out features, warnings and notes listed


def _number(v) -> float | None:
    """A finite number from stored JSON, or None (a string, a bool, NaN, garbage)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _count(v) -> int | None:
    f = _number(v)
    return None if f is None else int(f)


def _interval(v) -> tuple[float, float] | None:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        lo, hi = _number(v[0]), _number(v[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def _texts(v, limit: int = 600) -> list[str]:
    items = v if isinstance(v, list) else ([] if v in (None, "") else [v])
    out = []
    for x in items[:MAX_LISTED]:
        text, full = cut(show_value(x), limit)
        out.append(text + ("\u2026" if full else ""))
    return out


def _pointer(column: str) -> str:
    """SQL for a JSON pointer to the key held in `column` ('/' and '~' escaped), so any label name is safe."""
    return f"'/' || replace(replace({column}, '~', '~0'), '/', '~1')"


@dataclass
class Confident:
    example_id: str
    dataset: str
    prompt: str
    prompt_cut: int | None
    probability: float | None  # of its predicted label
    pass1: float | None  # the probe's pass@1 (step-0 eval), when an eval has the example
    probe_correct: int | None
    probe_n: int | None
    probe_run: str


@dataclass
class PredictionsData:
    prediction_set: str
    n_sets: int  # prediction sets in the workspace (the latest is shown)
    created_at: str
    label_set: str  # the labels learned
    same_label_set: bool  # ... are the label set this report shows
    train_runs: list[str]  # when the labels were computed over chosen train runs only
    reference_label_set: str | None
    probe_run: str  # whose step-0 eval gave the labelled examples' features
    apply_runs: list[str]  # probes of the unlabelled examples
    model: str
    n_labelled: int | None
    n_cv: int | None
    folds: int | None
    n_holdout: int
    per_label: list[dict]  # label, n, auroc, ci, not_easy, holdout_*, reference_* (see predict.LabelMetrics)
    has_not_easy: bool
    has_holdout: bool
    has_reference: bool
    macro_auroc: float | None
    accuracy: float | None
    holdout_macro_auroc: float | None
    holdout_accuracy: float | None
    reference_macro_auroc: float | None
    reference_accuracy: float | None
    reference_agreement: float | None
    warnings: list[str]
    notes: list[str]
    features: list[str]
    n_features: int
    not_used: list[tuple[str, str]]
    n_predicted: int
    counts: list[dict]  # label, predicted (most probable), share, likely (probability >= LIKELY), mean probability
    datasets: list[tuple[str, int]]  # dataset of the predicted examples, count
    confident: list[tuple[str, int, list[Confident]]]  # predicted label, examples predicted so, the most confident


def predictions(r: Reader, config: ReportConfig, info: LabelSetInfo | None) -> PredictionsData | None:
    """The latest prediction set: how well the labels were learned, and what it predicts for unlabelled data."""
    if not r.filled("prediction_sets"):
        return None
    n_sets = int(r.one("SELECT count(*) FROM prediction_sets") or 0)
    ps, ls, probe, cfg, metrics, created = r.sql(
        "SELECT prediction_set, label_set, probe_run, config, metrics, created_at FROM prediction_sets "
        "ORDER BY created_at DESC, prediction_set LIMIT 1")[0]
    m = _json(metrics, {})
    m = m if isinstance(m, dict) else {}
    c = _json(cfg, {})
    c = c if isinstance(c, dict) else {}
    per_label = []
    for x in m.get("per_label") if isinstance(m.get("per_label"), list) else []:
        if not isinstance(x, dict):
            continue
        row = {"label": show_value(x.get("label"))[:80], "n": _count(x.get("n"))}
        for prefix in ("", "holdout_", "reference_"):
            row[prefix + "auroc"] = _number(x.get(prefix + "auroc"))
            row[prefix + "ci"] = _interval(x.get(prefix + "ci"))
            row[prefix + "not_easy"] = _number(x.get(prefix + "auroc_not_easy"))
            if prefix:
                row[prefix + "n"] = _count(x.get(prefix + "n")) or 0
        per_label.append(row)
    rank = {lab: i for i, lab in enumerate(order_labels(row["label"] for row in per_label))}
    per_label.sort(key=lambda row: (rank[row["label"]], row["label"]))
    n_holdout = _count(m.get("n_holdout")) or 0
    reference = m.get("reference_label_set")
    has_reference = bool(reference) or any(row["reference_auroc"] is not None for row in per_label)
    not_used = m.get("not_used") if isinstance(m.get("not_used"), dict) else {}
    features = m.get("features") if isinstance(m.get("features"), list) else []
    apply_runs = [show_value(x) for x in m.get("apply_runs") or [] if isinstance(x, str)] \
        if isinstance(m.get("apply_runs"), list) else []

    # what it predicts: counts per most probable label, and per label how many are at least LIKELY that label
    n_predicted = int(r.one("SELECT count(*) FROM predictions WHERE prediction_set = ?", [ps]) or 0) \
        if "predictions" in r.tables else 0
    counts, datasets, confident = [], [], []
    if n_predicted:
        top = dict(r.sql("SELECT predicted_label, count(*) FROM predictions WHERE prediction_set = ? GROUP BY 1",
                         [ps]))
        # the labels with a probability: the model's classes (every row of a set has the same keys)
        keys = {str(x) for x in m.get("classes") if isinstance(x, str)} if isinstance(m.get("classes"), list) \
            else set()
        keys |= set(r.one("SELECT json_keys(probabilities) FROM predictions WHERE prediction_set = ? "
                          "ORDER BY example_id LIMIT 1", [ps]) or [])
        keys = sorted(keys | set(top))
        paths = ["/" + k.replace("~", "~0").replace("/", "~1") for k in keys]
        stats = {keys[i - 1]: (int(n), mean) for i, n, mean in r.sql(
            f"SELECT i, count(*) FILTER (WHERE TRY_CAST(v[i] AS DOUBLE) >= {LIKELY}), "
            f"avg(TRY_CAST(v[i] AS DOUBLE)) FROM (SELECT json_extract(probabilities, ?::VARCHAR[]) AS v "
            f"FROM predictions WHERE prediction_set = ?), range(1, {len(keys) + 1}) t(i) GROUP BY i", [paths, ps])}
        for lab in order_labels(keys):
            likely, mean = stats.get(lab, (0, None))
            counts.append({"label": lab, "predicted": int(top.get(lab, 0)), "share": top.get(lab, 0) / n_predicted,
                           "likely": likely, "mean": mean})
        if "examples" in r.tables:
            datasets = [(str(d), int(n)) for d, n in r.sql(
                "SELECT coalesce(e.dataset, '(not in examples)'), count(*) AS n FROM predictions p "
                "LEFT JOIN examples e ON e.example_id = p.example_id WHERE p.prediction_set = ? "
                "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 8", [ps])]
            e_cols, e_join = "e.dataset, e.prompt", "LEFT JOIN examples e ON e.example_id = x.example_id"
        else:
            e_cols, e_join = "NULL AS dataset, NULL AS prompt", ""
        rows = r.sql(
            f"SELECT x.predicted_label, x.example_id, x.prob, {e_cols} FROM (SELECT *, row_number() OVER "
            f"(PARTITION BY predicted_label ORDER BY prob DESC NULLS LAST, md5(example_id), example_id) AS rk FROM "
            f"(SELECT example_id, predicted_label, TRY_CAST(json_extract(probabilities, {_pointer('predicted_label')}) "
            f"AS DOUBLE) AS prob FROM predictions WHERE prediction_set = ?)) x {e_join} "
            f"WHERE x.rk <= {CONFIDENT_PER_LABEL} ORDER BY x.predicted_label, x.rk", [ps])
        probes = {}
        if rows and "evals" in r.tables:
            ids = [row[1] for row in rows]
            kind = ("LEFT JOIN runs r ON r.run_id = v.run_id", "r.kind = 'probe'", "r.finished_at DESC NULLS LAST, ") \
                if "runs" in r.tables else ("", "false", "")
            for eid, run, n, k in r.sql(
                    f"SELECT v.example_id, v.run_id, v.n, v.n_correct FROM evals v {kind[0]} WHERE v.step = 0 "
                    f"AND v.n > 0 AND (v.run_id = ? OR {kind[1]}) AND v.example_id IN (SELECT unnest(?::VARCHAR[])) "
                    f"ORDER BY v.example_id, v.run_id = ? DESC, coalesce(list_position(?::VARCHAR[], v.run_id), "
                    f"1000000), {kind[2]}v.run_id", [probe, ids, probe, apply_runs]):
                probes.setdefault(eid, (run, int(n), int(k)))
        by_label: dict[str, list[Confident]] = {}
        for lab, eid, prob, dataset, prompt in rows:
            text, full = cut(prompt, 240) if prompt is not None else ("", None)
            run, n, k = probes.get(eid, ("", None, None))
            by_label.setdefault(lab, []).append(Confident(
                eid, "" if dataset is None else str(dataset), text, full, prob, k / n if n else None, k, n, run))
        confident = [(lab, int(top.get(lab, 0)), by_label[lab]) for lab in order_labels(by_label)]

    model = show_value(m.get("model") or c.get("model"))
    folds = _count(m.get("folds")) if m.get("folds") is not None else _count(c.get("folds"))
    train_runs = m.get("train_runs") if isinstance(m.get("train_runs"), list) else []
    return PredictionsData(
        prediction_set=str(ps), n_sets=n_sets, created_at=str(created)[:19], label_set=str(ls),
        same_label_set=info is not None and info.label_set == ls, train_runs=[show_value(x) for x in train_runs],
        reference_label_set=show_value(reference) if reference else None, probe_run=str(probe),
        apply_runs=apply_runs[:MAX_LISTED],
        model=model, n_labelled=_count(m.get("n_labelled")), n_cv=_count(m.get("n_cv")), folds=folds,
        n_holdout=n_holdout, per_label=per_label, has_not_easy=any(row["not_easy"] is not None for row in per_label),
        has_holdout=n_holdout > 0 or any(row["holdout_auroc"] is not None for row in per_label),
        has_reference=has_reference, macro_auroc=_number(m.get("macro_auroc")), accuracy=_number(m.get("accuracy")),
        holdout_macro_auroc=_number(m.get("holdout_macro_auroc")),
        holdout_accuracy=_number(m.get("holdout_accuracy")),
        reference_macro_auroc=_number(m.get("reference_macro_auroc")),
        reference_accuracy=_number(m.get("reference_accuracy")),
        reference_agreement=_number(m.get("reference_agreement")),
        warnings=_texts(m.get("warnings")), notes=_texts(m.get("notes")),
        features=[cut(show_value(x), 80)[0] for x in features[:MAX_LISTED]], n_features=len(features),
        not_used=[(cut(show_value(k), 120)[0], cut(show_value(v), 300)[0])
                  for k, v in list(not_used.items())[:MAX_LISTED]],
        n_predicted=n_predicted, counts=counts, datasets=datasets, confident=confident)


# -- exports ------------------------------------------------------------------------------------------------


@dataclass
class ExportsData:
    exports: list[dict]
    n_total: int


def exports(r: Reader, config: ReportConfig) -> ExportsData | None:
    if not r.filled("exports"):
        return None
    drops: dict[str, list[tuple[str, int]]] = {}
    if r.filled("export_drops"):
        for eid, reason, n in r.sql("SELECT export_id, reason, count(*) AS n FROM export_drops GROUP BY ALL "
                                    "ORDER BY export_id, n DESC, reason"):
            drops.setdefault(eid, []).append((reason, int(n)))
    out = []
    for eid, created, dest, formats, cfg, n_in, n_kept, n_dropped in r.sql(
            "SELECT export_id, created_at, destination, formats, config, n_in, n_kept, n_dropped FROM exports "
            "ORDER BY created_at DESC, export_id LIMIT 20"):
        c = _json(cfg, {})
        c = c if isinstance(c, dict) else {}
        settings = [(k, show_value(c.get(k))) for k in ("order", "drop", "keep", "pass_band", "where", "label_set",
                                                           "bare", "push_to_hub")
                    if c.get(k) not in (None, "", [], False)]
        f = _json(formats, [])
        out.append({"export_id": eid, "created": str(created)[:19], "destination": dest,
                    "formats": ", ".join(str(x) for x in f) if isinstance(f, list) else show_value(f),
                    "settings": settings, "n_in": n_in, "n_kept": n_kept, "n_dropped": n_dropped,
                    "drops": drops.get(eid, [])[:12]})
    return ExportsData(out, int(r.one("SELECT count(*) FROM exports")))
