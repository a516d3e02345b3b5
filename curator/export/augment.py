"""The augment stage: new problems derived from chosen examples, with provenance, ingested like any rows.

Methods:
- `lab-variants`: the arithmetic lab's template variants: the same bucket (same operations and digit
  counts), new numbers, exact answers and traces. Offline.
- `llm-similar`: an OpenAI-compatible chat model writes a new problem exercising the same skills, with
  its answer; a second, independent call (same or another model) solves it; the problem is kept only if
  math-verify says the two answers agree.
- `llm-decompose`: the model splits a problem into self-contained sub-problems with answers; each is
  solved independently and kept only if the answers agree.

New rows carry `parent_id`, `method` and `generator` and are written as a jsonl file that goes
through `curator ingest` (validation and quarantine included) as dataset `<name>`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from curator.errors import CuratorError
from curator.store import Workspace

METHODS = ("lab-variants", "llm-similar", "llm-decompose")


@dataclass
class AugmentConfig:
    method: str = "lab-variants"
    labels: list[str] = field(default_factory=lambda: ["learnable", "unlearnable"])  # whose examples to augment
    per_example: int = 2
    name: str = "augmented"  # dataset name of the new rows
    out: str = "curator-augment"  # folder for the generated jsonl
    seed: int = 0
    base_url: str | None = None
    model: str | None = None  # generator
    solver_model: str | None = None  # independent solver (default: the generator)
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise CuratorError(f"--method must be one of {', '.join(METHODS)}")
        if self.method.startswith("llm") and not (self.base_url and self.model):
            raise CuratorError(f"--method {self.method} needs --base-url and --model")


@dataclass
class AugmentSummary:
    parents: int
    proposed: int
    kept: int
    rejected: dict[str, int]
    ingest: object = None


def _parents(ws: Workspace, labels: list[str]):
    ls = ws.sql("SELECT label_set FROM label_sets ORDER BY created_at DESC LIMIT 1").fetchone()
    if ls is None:
        raise CuratorError("no labels yet; run `curator label` first (augment picks examples by label)")
    return ws.df("SELECT e.example_id, e.prompt, e.answer, e.meta FROM examples e JOIN labels l USING (example_id) "
                 "WHERE l.label_set = ? AND l.label IN (SELECT unnest(?::VARCHAR[])) ORDER BY e.example_id",
                 [ls[0], labels])


def lab_variants(parents, per_example: int, seed: int) -> list[dict]:
    from curator.lab.config import LabConfig
    from curator.lab.problems import make_problem

    buckets = {b.name: b for b in LabConfig().buckets}
    rng = random.Random(seed)
    rows, seen = [], set(parents.prompt)
    for eid, meta in zip(parents.example_id, parents.meta):
        bucket = buckets.get(json.loads(meta or "{}").get("bucket"))
        if bucket is None:
            continue
        made = 0
        for _ in range(per_example * 20):
            p = make_problem(bucket, rng)
            if p.prompt in seen:
                continue
            seen.add(p.prompt)
            rows.append({"prompt": p.prompt, "answer": p.answer, "solution": p.solution, "bucket": p.bucket,
                         "parent_id": eid, "method": "lab-variants", "generator": "lab templates"})
            made += 1
            if made == per_example:
                break
    return rows


def _chat(client, model: str, prompt: str) -> str:
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], temperature=0.7)
    return r.choices[0].message.content or ""


def llm_rows(parents, config: AugmentConfig) -> tuple[list[dict], dict[str, int]]:
    import os

    from openai import OpenAI, OpenAIError

    from curator.verify import Verifier

    client = OpenAI(base_url=config.base_url, api_key=os.environ.get(config.api_key_env) or "EMPTY",
                    timeout=config.timeout, max_retries=config.max_retries)
    solver = config.solver_model or config.model
    rejected = {"generator reply unusable": 0, "solver disagrees": 0, "request failed": 0}
    candidates = []
    for eid, prompt in zip(parents.example_id, parents.prompt):
        ask = (
            f"Write {config.per_example} new problems that exercise the same skills as this one, each with its "
            if config.method == "llm-similar" else
            "Split this problem into self-contained sub-problems, each with its "
        ) + ('final answer. Reply with a JSON list of objects {"problem": ..., "answer": ...} and nothing else.'
             f"\n\nProblem:\n{prompt}")
        try:
            items = json.loads(_chat(client, config.model, ask))
            if not isinstance(items, list):
                raise ValueError
            items = [(str(i["problem"]), str(i["answer"])) for i in items if isinstance(i, dict)]
        except (ValueError, KeyError, TypeError):
            rejected["generator reply unusable"] += 1
            continue
        except OpenAIError:
            rejected["request failed"] += 1
            continue
        candidates += [(eid, p, a) for p, a in items[: config.per_example if config.method == "llm-similar" else None]]
    solutions = []
    for _, p, _ in candidates:
        try:
            solutions.append(_chat(client, solver, f"Solve this problem. Put the final answer in \\boxed{{}}.\n\n{p}"))
        except OpenAIError:
            solutions.append("")
    with Verifier() as v:
        outcomes = v.verify_batch(solutions, [a for _, _, a in candidates]) if candidates else []
    rows = []
    for (eid, p, a), o in zip(candidates, outcomes):
        if o.status != "correct":
            rejected["solver disagrees"] += 1
            continue
        rows.append({"prompt": p, "answer": a, "parent_id": eid, "method": config.method,
                     "generator": config.model, "solver": solver})
    return rows, rejected


def augment(ws: Workspace, config: AugmentConfig) -> AugmentSummary:
    from curator.data.ingest import IngestConfig, ingest

    parents = _parents(ws, config.labels)
    if parents.empty:
        raise CuratorError(f"no examples labelled {', '.join(config.labels)} to augment")
    if config.method == "lab-variants":
        rows, rejected = lab_variants(parents, config.per_example, config.seed), {}
    else:
        rows, rejected = llm_rows(parents, config)
    summary = AugmentSummary(len(parents), len(rows) + sum(rejected.values()), len(rows), rejected)
    if not rows:
        return summary
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{config.name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary.ingest = ingest(ws, IngestConfig(source=str(path), name=config.name))
    return summary
