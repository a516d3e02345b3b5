"""What runs inside a training or probe process: the model side of a job.

`run_job(job, emit)` loads the model, runs the initial-model evaluation (a
probe job) or GRPO for one seed (a train job), and reports everything through
`emit(message)`: a tuple whose first item names it. The parent process (see
`curator.train`) is the only writer of the workspace; here nothing touches
DuckDB. Messages, in order for a train job:

    ("records", run_id, kind, rows)   history / rollouts rows of the current step
    ("step", run_id, step, stats)     every record of `step` has been sent
    ("eval", run_id, step, rows, kept) pass@1 counts (and kept completions) at a checkpoint step
    ("done", run_id, summary)
    ("error", run_id, message)        instead of the rest, when the job fails

A train job resumes from `job["resume_step"]` (a complete checkpoint the
parent chose) with every RNG state restored, so a killed run continues
exactly where it would have been.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Callable

Emit = Callable[[tuple], None]


def _examples(job: dict):
    from curator.trainers.grpo import Example

    return [Example(e, p, a) for e, p, a in job["examples"]]


def _load(model_path: str, threads: int, device: str = "auto"):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_path).to(device).eval()
    return model, tok


def run_job(job: dict, emit: Emit) -> None:
    try:
        if job["kind"] == "probe":
            _probe(job, emit)
        else:
            _train(job, emit)
    except Exception as e:  # reported to the parent, which marks the run failed and says why
        emit(("error", job["run_id"], f"{type(e).__name__}: {e}", traceback.format_exc(limit=6)))


def _backend(job: dict, on_request=None):
    """The rollout backend a probe job names: hf (default), openai or vllm."""
    spec = job.get("backend") or {"name": "hf"}
    if spec["name"] == "openai":
        from curator.trainers.openai_backend import OpenAIBackend

        tok = None
        if spec.get("tokenizer"):
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(spec["tokenizer"])
        return OpenAIBackend(spec["base_url"], job["model"], api_key_env=spec["api_key_env"],
                             prompts_per_request=spec["prompts_per_request"], concurrency=spec["concurrency"],
                             tokenizer=tok)
    if spec["name"] == "vllm":
        from curator.trainers.vllm_backend import VLLMBackend

        return VLLMBackend(job["model"])
    from curator.trainers.rollout import HFBackend

    model, tok = _load(job["model"], job["threads"], job["device"])
    return HFBackend(model, tok)


def _probe(job: dict, emit: Emit) -> None:
    from curator.trainers.evaluate import evaluate
    from curator.verify import Verifier

    backend = _backend(job)
    with Verifier(workers=job["verify_workers"]) as v:
        rows, kept = evaluate(backend, _examples(job), v.verify_batch, n=job["eval_n"],
                              temperature=job["eval_temperature"], seed=job["eval_seed"],
                              max_new_tokens=job["max_new_tokens"], keep=job["keep_completions"],
                              on_chunk=lambda k: emit(("progress", job["run_id"], k)))
    emit(("eval", job["run_id"], 0, rows, kept))
    emit(("done", job["run_id"], {}))


def _train(job: dict, emit: Emit) -> None:
    from curator.trainers import checkpoint
    from curator.trainers.evaluate import evaluate
    from curator.trainers.grpo import GRPOConfig, GRPOTrainer
    from curator.trainers.rollout import HFBackend
    from curator.verify import Verifier

    run_id = job["run_id"]
    parent = job.get("parent_pid")
    model, tok = _load(job["model"], job["threads"], job["device"])
    config = GRPOConfig(**job["grpo"])
    ckpt_dir = Path(job["run_dir"]) / "checkpoints"
    examples = _examples(job)
    with Verifier(workers=job["verify_workers"]) as v:
        trainer = GRPOTrainer(model, tok, examples, v.verify_batch, config,
                              on_records=lambda kind, rows: emit(("records", run_id, kind, rows)), run_id=run_id)
        if job["resume_step"]:
            trainer.load_state(checkpoint.load(ckpt_dir, job["resume_step"]))
        t0 = time.time()
        for step in range(trainer.step_index + 1, config.steps + 1):
            if parent and os.getppid() != parent:
                return  # the parent is gone: stop rather than train into the void
            stats = trainer.step()
            emit(("step", run_id, step, asdict(stats)))
            if step % job["checkpoint_every"] == 0 or step == config.steps:
                checkpoint.save(ckpt_dir, step, trainer.state())
            if job["eval_every"] and step % job["eval_every"] == 0 and step != config.steps:
                _eval_at(job, trainer, v, step, emit)
        policy = trainer.policy()
        rows, kept = evaluate(HFBackend(policy, tok), examples, v.verify_batch, n=job["eval_n"],
                              temperature=job["eval_temperature"], seed=job["eval_seed"],
                              max_new_tokens=job["max_new_tokens"], keep=job["keep_completions"])
        emit(("eval", run_id, config.steps, rows, kept))
        final = Path(job["run_dir"]) / "final"
        policy.save_pretrained(final)
        tok.save_pretrained(final)
    emit(("done", run_id, {"seconds": time.time() - t0, "final_model": str(final)}))


def _eval_at(job: dict, trainer, verifier, step: int, emit: Emit) -> None:
    from curator.trainers.evaluate import evaluate
    from curator.trainers.rollout import HFBackend

    rows, kept = evaluate(HFBackend(trainer.policy(), trainer.tokenizer), trainer.examples,
                          verifier.verify_batch, n=job["eval_n"], temperature=job["eval_temperature"],
                          seed=job["eval_seed"], max_new_tokens=job["max_new_tokens"], keep="none")
    emit(("eval", job["run_id"], step, rows, kept))


def process_main(job: dict, queue) -> None:
    """Entry point of a job's own process: emit into the parent's queue."""
    run_job(job, queue.put)
