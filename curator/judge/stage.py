"""The judge stage: score the reasoning of stored correct rollouts, per example and per label group.

    judge(workspace, JudgeConfig()) -> JudgeSummary

For each example (or `per_group` examples per label group), up to `k` stored
correct training rollouts (earliest first) are judged. Every judgment goes to
`judgments`; per-example mean and spread go to `reasoning`. A cache keyed by
(judge, model, rubric version, judged text) answers repeated items without a
request; a changed rubric version misses it and re-judges. Judge errors are
recorded as such (never as a score) and are not cached, so a re-run retries them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pandas as pd

from curator.errors import CuratorError
from curator.judge.base import JudgeItem, Judgment, StepCheckerJudge
from curator.store import Workspace, utcnow


@dataclass
class JudgeConfig:
    judge: str = "step_checker"  # step_checker | openai
    base_url: str | None = None  # for openai
    model: str | None = None  # for openai
    api_key_env: str = "OPENAI_API_KEY"  # the *name* of the variable holding the key
    k: int = 4  # correct rollouts per example
    per_group: int = 0  # 0: every example; N: N examples per label group (deterministic sample)
    label_set: str | None = None  # groups for --per-group and the summary (default: latest)
    timeout: float = 30.0
    max_retries: int = 3
    concurrency: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.judge not in ("step_checker", "openai"):
            raise CuratorError(f"--judge must be step_checker or openai, got {self.judge!r}")
        if self.judge == "openai" and not (self.base_url and self.model):
            raise CuratorError("--judge openai needs --base-url and --model")
        if self.k < 1 or self.per_group < 0:
            raise CuratorError("--k must be >= 1 and --per-group >= 0")


@dataclass
class JudgeSummary:
    judge: str
    model: str | None
    rubric_version: str
    items: int = 0
    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    by_group: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # label -> (n, mean, std)


def make_judge(config: JudgeConfig):
    if config.judge == "step_checker":
        return StepCheckerJudge()
    from curator.judge.llm import OpenAIJudge

    return OpenAIJudge(config.base_url, config.model, config.api_key_env, timeout=config.timeout,
                       max_retries=config.max_retries, concurrency=config.concurrency)


def cache_key(judge, item: JudgeItem) -> str:
    blob = json.dumps([judge.name, judge.model or "", judge.rubric_version, item.problem, item.answer,
                       item.completion])
    return hashlib.sha256(blob.encode()).hexdigest()


def _latest_label_set(ws: Workspace, name: str | None) -> str | None:
    row = ws.sql("SELECT label_set FROM label_sets " + ("WHERE label_set = ? " if name else "")
                 + "ORDER BY created_at DESC LIMIT 1", [name] if name else []).fetchone()
    if name and not row:
        raise CuratorError(f"no label set {name!r}")
    return row[0] if row else None


def _select(ws: Workspace, config: JudgeConfig, label_set: str | None) -> pd.DataFrame:
    rows = ws.df(
        "SELECT r.example_id, r.run_id, r.step, r.sample_index, e.prompt, e.answer, r.completion "
        "FROM rollouts r JOIN examples e USING (example_id) "
        "WHERE r.phase = 'train' AND r.status = 'correct' "
        "QUALIFY row_number() OVER (PARTITION BY r.example_id ORDER BY r.step, r.run_id, r.sample_index) <= ? "
        "ORDER BY r.example_id, r.step, r.run_id, r.sample_index", [config.k])
    if rows.empty:
        raise CuratorError("no correct training rollouts stored; train with --keep-completions correct (the default)")
    if config.per_group and label_set:
        labels = ws.df("SELECT example_id, label FROM labels WHERE label_set = ?", [label_set])
        ids = rows[["example_id"]].drop_duplicates().merge(labels, on="example_id")
        chosen = ids.groupby("label", group_keys=False).apply(
            lambda d: d.sample(min(len(d), config.per_group), random_state=config.seed), include_groups=True)
        rows = rows[rows.example_id.isin(chosen.example_id)]
    return rows.reset_index(drop=True)


def judge(ws: Workspace, config: JudgeConfig, advance=lambda n: None) -> JudgeSummary:
    j = make_judge(config)
    label_set = _latest_label_set(ws, config.label_set)
    rows = _select(ws, config, label_set)
    items = [JudgeItem(p, a, c) for p, a, c in zip(rows.prompt, rows.answer, rows.completion)]
    keys = [cache_key(j, it) for it in items]
    cached = {}
    if keys:
        ws.con.register("_keys", pd.DataFrame({"cache_key": sorted(set(keys))}))
        try:
            for k, status, score, rationale in ws.sql(
                    "SELECT cache_key, status, score, rationale FROM judge_cache JOIN _keys USING (cache_key)").fetchall():
                cached[k] = Judgment(status, score, rationale)
        finally:
            ws.con.unregister("_keys")
    summary = JudgeSummary(j.name, j.model, j.rubric_version, items=len(items))
    todo = sorted({k: i for i, k in enumerate(keys) if k not in cached}.values())
    summary.cache_hits = len(items) - len(todo)
    fresh: dict[str, Judgment] = {}
    chunk = 64
    for start in range(0, len(todo), chunk):
        idx = todo[start : start + chunk]
        for i, verdict in zip(idx, j.judge([items[i] for i in idx])):
            fresh[keys[i]] = verdict
            summary.requests += verdict.requests
            summary.prompt_tokens += verdict.prompt_tokens or 0
            summary.completion_tokens += verdict.completion_tokens or 0
        advance(len(idx))
    verdicts = [cached.get(k) or fresh[k] for k in keys]
    _write(ws, j, rows, keys, verdicts, fresh)
    summary.statuses = {s: sum(v.status == s for v in verdicts) for s in ("ok", "judge_error", "refused")}
    if label_set:
        summary.by_group = _by_group(ws, j, label_set)
    return summary


def _write(ws, j, rows, keys, verdicts, fresh) -> None:
    now = utcnow()
    model = j.model or ""
    judgments = pd.DataFrame({
        "example_id": rows.example_id, "run_id": rows.run_id, "step": rows.step, "sample_index": rows.sample_index,
        "judge": j.name, "model": j.model, "rubric_version": j.rubric_version, "text_hash": keys,
        "score": [v.score for v in verdicts], "status": [v.status for v in verdicts],
        "rationale": [v.rationale for v in verdicts], "created_at": now,
    })
    cache = pd.DataFrame([{"cache_key": k, "judge": j.name, "model": j.model, "rubric_version": j.rubric_version,
                           "status": v.status, "score": v.score, "rationale": v.rationale, "created_at": now}
                          for k, v in fresh.items() if v.status != "judge_error"])
    per_example = judgments.groupby("example_id").apply(lambda d: pd.Series({
        "n_judged": int((d.status == "ok").sum()), "n_failed": int((d.status != "ok").sum()),
        "mean_score": d.score[d.status == "ok"].mean(), "std_score": d.score[d.status == "ok"].std(ddof=0),
    }), include_groups=False).reset_index().assign(judge=j.name, model=model, rubric_version=j.rubric_version)
    with ws.transaction():
        ids = judgments.example_id.unique().tolist()
        ws.execute("DELETE FROM judgments WHERE judge = ? AND coalesce(model, '') = ? AND rubric_version = ? "
                   "AND example_id IN (SELECT unnest(?::VARCHAR[]))", [j.name, model, j.rubric_version, ids])
        ws.write("judgments", judgments)
        ws.write("judge_cache", cache, on_conflict="replace")
        ws.write("reasoning", per_example, on_conflict="replace")


def _by_group(ws, j, label_set) -> dict[str, tuple[int, float, float]]:
    rows = ws.sql(
        "SELECT l.label, count(*), avg(g.score), stddev_pop(g.score) FROM judgments g JOIN labels l "
        "ON l.example_id = g.example_id AND l.label_set = ? WHERE g.judge = ? AND coalesce(g.model, '') = ? "
        "AND g.rubric_version = ? AND g.status = 'ok' GROUP BY 1 ORDER BY 1",
        [label_set, j.name, j.model or "", j.rubric_version]).fetchall()
    return {label: (int(n), float(m), float(s or 0.0)) for label, n, m, s in rows}
