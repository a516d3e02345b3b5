"""Bring your own trainer: TRL's GRPOTrainer on curator's embedded lab, end to end.

    python examples/trl_lab.py [--workdir ./trl-lab] [--examples 0] [--steps 120] [--eval-n 16] [--seed 0]

Your trainer is TRL here; curator only watches. The six steps, each a public
curator call (the CLI command that does the same is printed beside it):

1. ingest the lab's train pool (`data/lab/train.jsonl`, 384 arithmetic
   problems; `--examples N` takes a deterministic subset of N) with an
   `example_id` column, into a fresh workspace `WORKDIR/curator.duckdb`;
2. probe the initial model (the shipped lab checkpoint `data/lab/model`):
   pass@1 from `--eval-n` samples per example at T=0.7;
3. train it with TRL's `GRPOTrainer` (CPU, fp32, no vLLM, G=8 completions of
   16 prompts per step, at most 48 new tokens, T=1.0, no top-k / top-p,
   beta 0, loss_type "dapo", lr 2e-4 as in `curator demo`). The reward is
   curator's verifier (1.0 for a correct answer, else 0.0) wrapped with
   `record_outcomes`, and `CuratorCallback` imports every scored completion
   as an `import` run at the end of training; the final model is saved to
   `WORKDIR/final`;
4. probe the final checkpoint with the same eval settings;
5. import the recorded outcomes again, now linked to the two probes (the same
   run id as the callback's import, so that run is replaced, not duplicated);
6. label every example (tau 0.1 on pass@1) and print the label table.

The default run (384 examples, 120 steps, eval n 16) takes about 80 seconds
on 2 CPU cores with one torch thread and shows GRPO at work (seed 0):
training reward 0.39 -> 0.46, pass@1 0.429 -> 0.532, 25 hard problems
learnable. With `--steps 40` (about 40 seconds) the model barely moves
(pass@1 0.429 -> 0.439). With a single training run the label "unstable" (runs
that disagree) cannot occur. Everything ends up in
`WORKDIR/curator.duckdb`; `curator -w WORKDIR/curator.duckdb report` renders
the HTML report, and `WORKDIR/summary.json` names the runs.

Needs TRL (pip install -c constraints/cpu.txt -e '.[test]' installs it).
Re-running with the same --workdir starts over: the files this script wrote
there before (workspace, outcomes, checkpoints) are removed first.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

from curator.pipeline import LAB_DATA, LAB_MODEL

G = 8  # completions per prompt
PROMPTS_PER_STEP = 16
MAX_NEW_TOKENS = 48
EVAL_TEMPERATURE = 0.7
TAU = 0.1
LABEL_ORDER = ("easy", "learnable", "unlearnable", "never_solved", "unstable")
# what this script writes under --workdir (and removes before starting again)
OUTPUTS = ("curator.duckdb", "curator.duckdb.wal", "train.jsonl", "outcomes", "trl-output", "final",
           "summary.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="TRL's GRPOTrainer on curator's lab: ingest, probe, train (recorded), probe, import, label.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--workdir", default="./trl-lab", help="folder for the workspace, outcomes and checkpoints")
    ap.add_argument("--examples", type=int, default=0,
                    help="train on a deterministic subset of this many lab problems (0: all 384)")
    ap.add_argument("--steps", type=int, default=120, help="GRPO optimizer steps")
    ap.add_argument("--eval-n", type=int, default=16, help="samples per example in each probe (pass@1)")
    ap.add_argument("--lr", type=float, default=2e-4, help="learning rate (curator demo's)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the subset and of TRL (the probes use seed 0, as `curator probe` does)")
    ap.add_argument("--log-every", type=int, default=5, help="print the training reward every N steps")
    args = ap.parse_args(argv)
    if args.examples < 0 or args.steps < 1 or args.eval_n < 1 or args.log_every < 1:
        ap.error("--examples must be >= 0 and --steps, --eval-n, --log-every >= 1")
    return args


def say(msg: str = "") -> None:
    print(msg, flush=True)


def lab_rows(n: int, seed: int) -> list[dict]:
    """The lab's train pool with an `example_id` column (the pool index), all or a seeded subset of n."""
    pool = [json.loads(x) for x in (LAB_DATA / "train.jsonl").read_text().splitlines() if x.strip()]
    rows = [{"example_id": f"lab-{i:03d}", **r} for i, r in enumerate(pool)]
    if n and n < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), n))
        rows = [rows[i] for i in keep]
    return rows


def mean_pass1(ws, run_id: str) -> float:
    return float(ws.sql("SELECT avg(n_correct::DOUBLE / n) FROM evals WHERE run_id = ? AND step = 0",
                        [run_id]).fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.time()

    # Heavy imports only here, so `--help` stays instant.
    import warnings

    import torch

    torch.set_num_threads(1)  # the lab model is tiny: one thread is fastest and leaves the other core free
    try:
        import trl
    except ImportError:
        say("trl is not installed; install it with  pip install -c constraints/cpu.txt -e '.[test]'")
        return 1
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from curator.analysis.labels import LabelConfig, label
    from curator.data.ingest import IngestConfig, ingest
    from curator.importers.trl import CuratorCallback, import_outcomes, outcomes_run_id, record_outcomes
    from curator.store import Workspace
    from curator.train import EvalConfig, ProbeConfig, probe
    from curator.verify import Verifier

    warnings.filterwarnings("ignore", category=FutureWarning)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # start over: a probe of WORKDIR/final from an earlier run would otherwise be reused
        p = work / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    ws_path, outcomes, final = work / "curator.duckdb", work / "outcomes", work / "final"
    say(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}; "
        f"1 torch thread; workdir {work}")

    # -- 1. ingest ---------------------------------------------------------------------------------------
    rows = lab_rows(args.examples, args.seed)
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    say(f"\n[1/6] ingest {len(rows)} lab problems with their example_id column"
        f"\n      (CLI: curator -w {ws_path} ingest {data} --name lab --id-field example_id)")
    with Workspace(ws_path) as ws:
        s = ingest(ws, IngestConfig(source=str(data), name="lab", id_field="example_id"))
    say(f"      ingested {s.dataset}: {s.n_rows} rows, {s.n_new} new, {s.n_quarantined} quarantined")

    # -- 2. probe the initial model --------------------------------------------------------------------
    eval_cfg = EvalConfig(n=args.eval_n, temperature=EVAL_TEMPERATURE, seed=0)  # the CLI's probe seed
    say(f"\n[2/6] probe the initial model: {args.eval_n} samples per example at T={EVAL_TEMPERATURE}"
        f"\n      (CLI: curator -w {ws_path} probe --model {LAB_MODEL} --eval-n {args.eval_n})")
    def probe_model(model) -> tuple[str, float, float]:
        """(probe run id, its mean pass@1, seconds) with the eval settings above."""
        t = time.time()
        with Workspace(ws_path) as ws:
            run = probe(ws, ProbeConfig(model=str(model), eval=eval_cfg, max_new_tokens=MAX_NEW_TOKENS,
                                        threads=1, verify_workers=1))
            return run, mean_pass1(ws, run), time.time() - t

    initial, p_init, secs = probe_model(LAB_MODEL)
    say(f"      {initial}: mean pass@1 {p_init:.3f} ({secs:.0f} s)")

    # -- 3. train with TRL -----------------------------------------------------------------------------
    say(f"\n[3/6] train with TRL's GRPOTrainer: {args.steps} steps x {PROMPTS_PER_STEP} prompts x G={G}, "
        f"lr {args.lr:g}, T=1.0, beta 0, loss dapo"
        f"\n      reward: curator's verifier, wrapped with record_outcomes(..., id_column='example_id') -> "
        f"{outcomes.name}/; CuratorCallback imports the run at the end")
    by_step: dict[int, list[float]] = defaultdict(list)  # step -> rewards, for the progress lines
    lengths: dict[int, list[int]] = defaultdict(list)
    t = time.time()
    with Verifier(workers=1) as verifier:
        def lab_correct(prompts, completions, answer, trainer_state=None, completion_ids=None, **kwargs):
            """Your reward function, in TRL's signature: 1.0 when the boxed answer equals the gold answer."""
            rewards = [float(o.reward) for o in verifier.verify_batch(list(completions), list(answer))]
            step = trainer_state.global_step if trainer_state is not None else -1
            by_step[step].extend(rewards)
            if completion_ids is not None:
                lengths[step].extend(len(ids) for ids in completion_ids)
            return rewards

        reward = record_outcomes(lab_correct, outcomes, id_column="example_id")

        class Progress(TrainerCallback):
            def on_step_end(self, targs, state, control, **kw):
                k = state.global_step
                if k % args.log_every == 0 or k == args.steps:
                    recent = [r for s in range(max(0, k - args.log_every), k) for r in by_step.get(s, [])]
                    lens = [x for s in range(max(0, k - args.log_every), k) for x in lengths.get(s, [])]
                    say(f"      step {k:>3}/{args.steps}  reward {sum(recent) / max(1, len(recent)):.3f}  "
                        f"length {sum(lens) / max(1, len(lens)):4.1f} tokens  (mean of steps "
                        f"{max(0, k - args.log_every)}-{k - 1})  {time.time() - t:5.0f} s")

        config = GRPOConfig(
            output_dir=str(work / "trl-output"), use_cpu=True, bf16=False, fp16=False,
            gradient_checkpointing=False, use_vllm=False, report_to="none", max_steps=args.steps,
            per_device_train_batch_size=PROMPTS_PER_STEP * G, gradient_accumulation_steps=1,
            steps_per_generation=1, num_iterations=1, num_generations=G, max_completion_length=MAX_NEW_TOKENS,
            temperature=1.0, top_k=0, top_p=1.0, beta=0.0, loss_type="dapo", learning_rate=args.lr,
            lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.99,
            max_grad_norm=1.0, epsilon=0.2, scale_rewards="group", disable_dropout=True,  # as curator's trainer
            logging_steps=args.log_every, save_strategy="no",
            eval_strategy="no", disable_tqdm=True, log_completions=False, seed=args.seed,
            dataloader_num_workers=0)
        model = AutoModelForCausalLM.from_pretrained(str(LAB_MODEL), dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(LAB_MODEL))
        dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"], "example_id": r["example_id"]}
                                     for r in rows])
        callback = CuratorCallback(ws_path, outcomes, model=str(LAB_MODEL))
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=dataset,
                              processing_class=tok, callbacks=[callback, Progress()])
        trainer.remove_callback(PrinterCallback)  # TRL's own log dicts; Progress prints instead
        torch.set_num_threads(1)  # in case the Trainer or accelerate touched it
        trainer.train()
        trainer.save_model(str(final))
        tok.save_pretrained(str(final))
    train_s = time.time() - t
    steps = sorted(s for s in by_step if s >= 0)
    tenth = max(1, len(steps) // 10)
    first = [r for s in steps[:tenth] for r in by_step[s]]
    last = [r for s in steps[-tenth:] for r in by_step[s]]
    say(f"      trained {len(steps)} steps in {train_s:.0f} s; mean reward {sum(first) / len(first):.3f} "
        f"(first {tenth} step{'s' if tenth > 1 else ''}) -> {sum(last) / len(last):.3f} (last {tenth}); "
        f"saved to {final}")
    if callback.error is not None:
        say(f"      the callback's import failed: {callback.error}")
        return 1
    cs = callback.summary
    say(f"      CuratorCallback imported {cs.n_records} scored completions as {cs.run_id}: "
        f"{cs.n_rows} history rows (step x example) over {cs.n_steps} steps, {cs.unmatched} unmatched")

    # -- 4. probe the final checkpoint -----------------------------------------------------------------
    say(f"\n[4/6] probe the final checkpoint with the same eval settings"
        f"\n      (CLI: curator -w {ws_path} probe --model {final} --eval-n {args.eval_n})")
    final_probe, p_final, secs = probe_model(final)
    say(f"      {final_probe}: mean pass@1 {p_final:.3f} (initial {p_init:.3f}; {secs:.0f} s)")

    # -- 5. link the imported run to its two probes ----------------------------------------------------
    run_id = outcomes_run_id(outcomes)
    say(f"\n[5/6] import the outcomes again, linked to the two probes (same run id {run_id}: replaced)"
        f"\n      (CLI: curator -w {ws_path} import {outcomes} --format trl-outcomes "
        f"--initial-probe {initial} --final-probe {final_probe})")
    with Workspace(ws_path) as ws:  # the TRL arguments the callback recorded are kept
        s = import_outcomes(ws, outcomes, model=str(LAB_MODEL), initial_probe=initial, final_probe=final_probe)
    how = "replaced the callback's import" if s.replaced else "new run"
    say(f"      {s.run_id}: {s.n_rows} history rows, initial_run {initial}, final evals from {final_probe} ({how})")
    for w in s.warnings:
        say(f"      warning: {w}")

    # -- 6. labels -------------------------------------------------------------------------------------
    say(f"\n[6/6] learnability labels, tau {TAU} on pass@1 (CLI: curator -w {ws_path} label --tau {TAU})")
    with Workspace(ws_path) as ws:
        ls = label(ws, LabelConfig(tau=TAU))
        table = ws.df("SELECT label, count(*) AS examples, avg(initial_pass1) AS initial, "
                      "avg(final_pass1_min) AS final FROM labels WHERE label_set = ? GROUP BY label", [ls.label_set])
    counts = ", ".join(f"{ls.counts[k]} {k}" for k in LABEL_ORDER if ls.counts.get(k))
    say(f"      labelled {sum(ls.counts.values())} examples as {ls.label_set}: {counts}")
    say("")
    say("      | label | examples | mean initial pass@1 | mean final pass@1 |")
    say("      |---|---|---|---|")
    by_label = {r.label: r for r in table.itertuples()}
    for k in LABEL_ORDER:
        if k in by_label:
            r = by_label[k]
            say(f"      | {k} | {r.examples} | {r.initial:.3f} | {r.final:.3f} |")
    say(f"      | all | {len(rows)} | {p_init:.3f} | {p_final:.3f} |")

    summary = {"workspace": str(ws_path), "initial_probe": initial, "final_probe": final_probe, "run_id": run_id,
               "label_set": ls.label_set, "counts": ls.counts, "mean_pass1": {"initial": p_init, "final": p_final},
               "steps": args.steps, "examples": len(rows), "eval_n": args.eval_n,
               "seconds": round(time.time() - t_start, 1)}
    (work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    say(f"\ndone in {time.time() - t_start:.0f} s. The report: curator -w {ws_path} report --out {work / 'report.html'}"
        f"\n(without --out it writes report.html in the current folder); run ids in {work / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
