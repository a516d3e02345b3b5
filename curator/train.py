"""The train and probe stages: GRPO runs per seed, pass@1 evaluations, all into the workspace.

    train(workspace, TrainConfig(seeds=(1, 42, 37))) -> TrainSummary
    probe(workspace, ProbeConfig(model=...)) -> ProbeSummary

The initial model is evaluated once (a `probe` run, n samples per example at
the eval temperature); every train run points at it through
`runs.initial_run`, runs GRPO for its seed, and is evaluated again at its
final step. Jobs run in up to `parallel` processes with `threads` torch
threads each; this process is the only one that writes the workspace.

Every step's records are written in one transaction together with
`runs.last_step`, so the workspace never holds half a step. Re-running the
same command skips finished runs and resumes unfinished ones from their last
complete checkpoint that the workspace has caught up with; rows of steps
after that checkpoint are deleted first and written again as the run replays
them, so nothing is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import queue as queue_mod
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from curator.errors import CuratorError
from curator.store import Workspace, utcnow


@dataclass
class EvalConfig:
    n: int = 32  # samples per example
    temperature: float = 0.7
    seed: int = 0
    every: int = 0  # also evaluate every K training steps (0: only initial and final)


@dataclass
class TrainConfig:
    model: str  # a checkpoint folder or Hub id that AutoModelForCausalLM loads
    seeds: tuple[int, ...] = (1, 42, 37)
    dataset: str | None = None  # default: every example in the workspace
    name: str | None = None  # run name prefix (default: grpo-<config hash>)
    steps: int = 150
    prompts_per_step: int = 32
    group_size: int = 8
    max_new_tokens: int = 48
    lr: float = 1e-4
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.0
    minibatches: int = 1
    micro_rows: int = 32  # rows per forward/backward in the update (lower it when a GPU runs out of memory)
    max_rounds: int = 4
    dynamic_sampling: bool = True
    lora: bool = False
    keep_completions: str = "correct"  # none | correct | all | k; what the judge and report can read
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint_every: int = 25
    parallel: int = 2  # processes
    threads: int = 1  # torch threads per process (1 was 3-5x faster than 2 on 2 busy cores)
    verify_workers: int = 1  # math-verify processes per job
    device: str = "auto"  # cuda when available, else cpu; or name one ("cuda:1")
    runs_dir: str | None = None  # checkpoints and final models (default: <workspace>.runs/)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise CuratorError("--seeds needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise CuratorError(f"--seeds has duplicates: {self.seeds}")
        if self.parallel < 1 or self.threads < 1:
            raise CuratorError("--parallel and --threads must be at least 1")
        if self.checkpoint_every < 1:
            raise CuratorError("--checkpoint-every must be at least 1")

    def grpo(self, seed: int) -> dict:
        from curator.trainers.grpo import GRPOConfig

        cfg = GRPOConfig(
            steps=self.steps, prompts_per_step=self.prompts_per_step, group_size=self.group_size,
            max_new_tokens=self.max_new_tokens, lr=self.lr, clip_low=self.clip_low, clip_high=self.clip_high,
            kl_coef=self.kl_coef, minibatches=self.minibatches, micro_rows=self.micro_rows,
            max_rounds=self.max_rounds,
            dynamic_sampling=self.dynamic_sampling, lora=self.lora, seed=seed,
            keep_completions=self.keep_completions,
        )
        return asdict(cfg)

    def run_name(self) -> str:
        if self.name:
            return self.name
        blob = {k: v for k, v in asdict(self).items() if k not in ("seeds", "parallel", "threads", "runs_dir",
                                                                    "verify_workers", "name", "device",
                                                                    "micro_rows")}
        blob["model"] = model_fingerprint(self.model) or self.model  # by content when local: portable ids
        return "grpo-" + hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:8]


@dataclass
class RunResult:
    run_id: str
    seed: int | None
    status: str
    steps_done: int
    mean_reward_first: float | None = None
    mean_reward_last: float | None = None
    message: str | None = None


@dataclass
class TrainSummary:
    initial_run: str
    runs: list[RunResult]


# -- workspace side ----------------------------------------------------------------

def _examples(ws: Workspace, dataset: str | None) -> list[tuple[str, str, str]]:
    where, params = ("WHERE dataset = ?", [dataset]) if dataset else ("", [])
    rows = ws.sql(f"SELECT example_id, prompt, answer FROM examples {where} ORDER BY dataset, row_index",
                  params).fetchall()
    if not rows:
        raise CuratorError(
            "no examples in the workspace" + (f" for dataset {dataset!r}" if dataset else "")
            + "; run `curator ingest` first"
        )
    return rows


def _runs_dir(ws: Workspace, config: TrainConfig) -> Path:
    return Path(config.runs_dir) if config.runs_dir else ws.path.with_name(ws.path.name + ".runs")


def model_fingerprint(model: str) -> str | None:
    """A content fingerprint of a local checkpoint folder (None for a Hub id or a server's model name).

    For every weight, config and tokenizer file: its name, its size and the sha256 of its first and
    last MiB (all of it when smaller), so a checkpoint rewritten in place (the same `final/` folder
    after another training run) is a different model, and the same files give the same fingerprint
    on every machine, whatever their mtimes. Reads at most 2 MiB per file."""
    folder = Path(model)
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.suffix not in (".safetensors", ".bin", ".pt", ".pth", ".json", ".model", ".txt"):
            continue
        size = f.stat().st_size
        h.update(f"{f.name}\0{size}\0".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()[:16]


def _probe_id(model: str, examples: list, ev: EvalConfig, max_new_tokens: int, backend: dict | None = None) -> str:
    # a local checkpoint is named by its content, not its path: the same files give the same id on
    # every machine, and a folder rewritten in place is probed again
    local = (not backend or backend["name"] != "openai") and model_fingerprint(model)
    parts = [local or model, [e[0] for e in examples], asdict(ev) | {"every": None}, max_new_tokens]
    if backend and backend["name"] != "hf":
        parts.append({k: backend.get(k) for k in ("name", "base_url")})
    blob = json.dumps(parts)
    return "probe-" + hashlib.sha256(blob.encode()).hexdigest()[:8]


def _register(ws: Workspace, run_id: str, kind: str, model: str, seed: int | None, config: dict,
              steps: int, initial_run: str | None, backend: str = "hf") -> None:
    ws.write("runs", pd.DataFrame([{
        "run_id": run_id, "kind": kind, "model": model, "backend": backend, "seed": seed,
        "config": json.dumps(config, default=str), "status": "running", "started_at": utcnow(),
        "finished_at": None, "last_step": 0, "initial_run": initial_run, "steps": steps,
    }]), on_conflict="ignore")


def _status(ws: Workspace, run_id: str) -> tuple[str, int] | None:
    row = ws.sql("SELECT status, last_step FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return (row[0], row[1] or 0) if row else None


def _rewind(ws: Workspace, run_id: str, to_step: int) -> None:
    """Delete every record after `to_step`: the run replays those steps from its checkpoint."""
    with ws.transaction():
        for table in ("history", "rollouts", "evals"):
            extra = " AND phase = 'train'" if table == "rollouts" else ""
            ws.execute(f"DELETE FROM {table} WHERE run_id = ? AND step > ?{extra}", [run_id, to_step])
        ws.execute("DELETE FROM rollouts WHERE run_id = ? AND phase = 'eval' AND step > ?", [run_id, to_step])
        ws.execute("UPDATE runs SET last_step = ?, status = 'running', finished_at = NULL WHERE run_id = ?",
                   [to_step, run_id])


class _Writer:
    """Receives job messages and writes them: one transaction per step."""

    def __init__(self, ws: Workspace, on_step=lambda run_id, step, stats: None,
                 on_progress=lambda run_id, k: None):
        self.ws = ws
        self.pending: dict[str, dict[str, list[dict]]] = {}
        self.results: dict[str, RunResult] = {}
        self.rewards: dict[str, list[float]] = {}
        self.on_step = on_step
        self.on_progress = on_progress

    def handle(self, msg: tuple) -> None:
        kind, run_id = msg[0], msg[1]
        if kind == "records":
            self.pending.setdefault(run_id, {}).setdefault(msg[2], []).extend(msg[3])
        elif kind == "step":
            step, stats = msg[2], msg[3]
            batch = self.pending.pop(run_id, {})
            with self.ws.transaction():
                if batch.get("history"):
                    self.ws.write("history", pd.DataFrame(batch["history"]))
                if batch.get("rollouts"):
                    self.ws.write("rollouts", pd.DataFrame(batch["rollouts"]))
                self.ws.execute("UPDATE runs SET last_step = ? WHERE run_id = ?", [step, run_id])
            self.rewards.setdefault(run_id, []).append(stats["mean_reward"])
            self.on_step(run_id, step, stats)
        elif kind == "eval":
            step, rows, kept = msg[2], msg[3], msg[4]
            with self.ws.transaction():
                self.ws.write("evals", pd.DataFrame(rows).assign(run_id=run_id, step=step), on_conflict="replace")
                if kept:
                    self.ws.write("rollouts", pd.DataFrame(kept).assign(run_id=run_id, step=step, phase="eval"),
                                  on_conflict="replace")
        elif kind == "progress":
            self.on_progress(run_id, msg[2])
        elif kind == "done":
            self.ws.execute("UPDATE runs SET status = 'finished', finished_at = ? WHERE run_id = ?",
                            [utcnow(), run_id])
            self._result(run_id, "finished")
        elif kind == "error":
            if os.environ.get("CURATOR_DEBUG") and len(msg) > 3:
                print(msg[3], file=sys.stderr)
            if self.ws.con is not None:
                with contextlib.suppress(Exception):
                    self.ws.execute("ROLLBACK")  # a write that failed mid-transaction
            self.ws.execute("UPDATE runs SET status = 'failed', finished_at = ? WHERE run_id = ?",
                            [utcnow(), run_id])
            self._result(run_id, "failed", msg[2])

    def _result(self, run_id: str, status: str, message: str | None = None) -> None:
        row = self.ws.sql("SELECT seed, last_step FROM runs WHERE run_id = ?", [run_id]).fetchone()
        r = self.rewards.get(run_id, [])
        k = max(1, len(r) // 10)
        self.results[run_id] = RunResult(run_id, row[0], status, row[1] or 0,
                                         sum(r[:k]) / k if r else None, sum(r[-k:]) / k if r else None, message)


def _execute(jobs: list[dict], writer: _Writer, parallel: int) -> None:
    """Run jobs in this process (parallel == 1) or in up to `parallel` child processes."""
    if parallel == 1 or len(jobs) == 1:
        from curator.runner import run_job

        for job in jobs:
            run_job(job, writer.handle)
        return
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    waiting = list(jobs)
    alive: dict[str, multiprocessing.process.BaseProcess] = {}
    finished: set[str] = set()
    from curator.runner import process_main

    try:
        while waiting or alive:
            while waiting and len(alive) < parallel:
                job = waiting.pop(0) | {"parent_pid": os.getpid()}
                p = ctx.Process(target=process_main, args=(job, q), name=f"curator-{job['run_id']}", daemon=False)
                p.start()
                alive[job["run_id"]] = p
            try:
                msg = q.get(timeout=0.5)
            except queue_mod.Empty:
                msg = None
            if msg is not None:
                writer.handle(msg)
                if msg[0] in ("done", "error"):
                    finished.add(msg[1])
                    alive.pop(msg[1]).join(timeout=30)
                continue
            for run_id, p in list(alive.items()):
                if not p.is_alive() and run_id not in finished:
                    # drain what it sent before dying, then report the death
                    while True:
                        try:
                            writer.handle(q.get(timeout=0.2))
                        except queue_mod.Empty:
                            break
                    if run_id not in finished:
                        writer.handle(("error", run_id, f"process exited with code {p.exitcode}"))
                        finished.add(run_id)
                    alive.pop(run_id)
    finally:
        for p in alive.values():
            p.kill()


def _job_base(config: TrainConfig, examples, model: str) -> dict:
    return {
        "model": model, "examples": examples, "threads": config.threads,
        "verify_workers": config.verify_workers, "eval_n": config.eval.n,
        "eval_temperature": config.eval.temperature, "eval_seed": config.eval.seed,
        "eval_every": config.eval.every, "max_new_tokens": config.max_new_tokens,
        "keep_completions": config.keep_completions, "parent_pid": None, "device": config.device,
    }


def train(ws: Workspace, config: TrainConfig, on_step=lambda run_id, step, stats: None,
          on_progress=lambda run_id, k: None) -> TrainSummary:
    from curator.trainers import checkpoint

    model = str(Path(config.model).resolve()) if Path(config.model).exists() else config.model
    examples = _examples(ws, config.dataset)
    base = _job_base(config, examples, model)
    runs_dir = _runs_dir(ws, config)
    jobs = []

    initial = _probe_id(model, examples, config.eval, config.max_new_tokens)
    state = _status(ws, initial)
    if state is None or state[0] != "finished":
        _register(ws, initial, "probe", model, None, {"eval": asdict(config.eval), "purpose": "initial model"},
                  0, None)
        jobs.append(base | {"kind": "probe", "run_id": initial})

    name = config.run_name()
    run_ids = []
    for seed in config.seeds:
        run_id = f"{name}-s{seed}"
        run_ids.append(run_id)
        run_dir = runs_dir / run_id
        state = _status(ws, run_id)
        if state and state[0] == "finished":
            continue
        resume = 0
        if state:
            resume = checkpoint.latest(run_dir / "checkpoints", at_most=state[1]) or 0
            _rewind(ws, run_id, resume)
        else:
            _register(ws, run_id, "train", model, seed, asdict(config) | {"seed": seed}, config.steps, initial)
        jobs.append(base | {"kind": "train", "run_id": run_id, "grpo": config.grpo(seed),
                            "run_dir": str(run_dir), "resume_step": resume,
                            "checkpoint_every": config.checkpoint_every})

    writer = _Writer(ws, on_step, on_progress)
    _execute(jobs, writer, config.parallel)
    results = []
    for run_id in run_ids:
        if run_id in writer.results:
            results.append(writer.results[run_id])
        else:
            seed, last = ws.sql("SELECT seed, last_step FROM runs WHERE run_id = ?", [run_id]).fetchone()
            results.append(RunResult(run_id, seed, "finished (earlier)", last or 0))
    failed = [r for r in [*results, writer.results.get(initial)] if r and r.status == "failed"]
    if failed:
        raise CuratorError("; ".join(f"run {r.run_id} failed: {r.message}" for r in failed)
                           + "; re-run the same command to resume")
    return TrainSummary(initial, results)


BACKENDS = ("hf", "openai", "vllm")


@dataclass
class ProbeConfig:
    model: str  # hf/vllm: a checkpoint folder or Hub id; openai: the model name the server serves
    dataset: str | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    max_new_tokens: int = 48
    keep_completions: str = "none"
    threads: int = 1
    verify_workers: int = 2
    device: str = "auto"
    backend: str = "hf"  # hf | openai | vllm (see curator.trainers.rollout)
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # openai: the environment variable holding the key (never stored)
    concurrency: int = 8  # openai: requests in flight
    prompts_per_request: int = 16  # openai: prompts per /v1/completions request
    tokenizer: str | None = None  # openai: tokenizer to count completion tokens (default: lengths in chars)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise CuratorError(f"--backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.backend == "openai" and not self.base_url:
            raise CuratorError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1) and --model")
        if self.backend != "openai" and self.base_url:
            raise CuratorError(f"--base-url is only used by --backend openai, not {self.backend!r}")

    def backend_spec(self) -> dict:
        """What the job process needs to build the backend: no secrets, only the key's variable name."""
        spec = {"name": self.backend}
        if self.backend == "openai":
            spec |= {"base_url": self.base_url, "api_key_env": self.api_key_env, "concurrency": self.concurrency,
                     "prompts_per_request": self.prompts_per_request, "tokenizer": self.tokenizer}
        return spec


def probe(ws: Workspace, config: ProbeConfig, on_progress=lambda run_id, k: None) -> str:
    """Evaluate a model on the workspace's examples (no training); return the probe run id."""
    local = config.backend != "openai" and Path(config.model).exists()
    model = str(Path(config.model).resolve()) if local else config.model
    examples = _examples(ws, config.dataset)
    spec = config.backend_spec()
    run_id = _probe_id(model, examples, config.eval, config.max_new_tokens, spec)
    state = _status(ws, run_id)
    if state and state[0] == "finished":
        return run_id
    _register(ws, run_id, "probe", model, None, {"eval": asdict(config.eval), "backend": spec,
                                                 "max_new_tokens": config.max_new_tokens}, 0, None,
              backend=config.backend)
    job = {"kind": "probe", "run_id": run_id, "model": model, "examples": examples, "threads": config.threads,
           "backend": spec,
           "verify_workers": config.verify_workers, "eval_n": config.eval.n,
           "eval_temperature": config.eval.temperature, "eval_seed": config.eval.seed,
           "max_new_tokens": config.max_new_tokens, "keep_completions": config.keep_completions,
           "device": config.device, "parent_pid": None}
    writer = _Writer(ws, on_progress=on_progress)
    _execute([job], writer, 1)
    r = writer.results[run_id]
    if r.status == "failed":
        raise CuratorError(f"probe {run_id} failed: {r.message}")
    return run_id
