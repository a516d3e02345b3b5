"""One GRPO step: curator's `GRPOTrainer.step()` against TRL's `GRPOTrainer`, same model, same batch.

    python benchmarks/grpo_step.py [--prompts 16] [--group 8] [--max-new-tokens 48] [--steps 5]
                                   [--modes full,lora] [--threads 1] [--lr 1e-4]

Needs TRL (a benchmark-only dependency): pip install -c constraints/cpu.txt -e '.[bench]'

Both sides train the shipped lab model (`data/lab/model`, loaded afresh for each
side and mode) on the lab's 384 train problems (`data/lab/train.jsonl`), in fp32
on the CPU with `--threads` torch threads. One optimizer step consumes P prompts
x G completions on both sides: curator with dynamic sampling off (one round of P
prompts per step), TRL with per_device_train_batch_size = P*G,
gradient_accumulation_steps = 1, steps_per_generation = 1, num_iterations = 1
(its RepeatSampler hands out each of P prompts G times). The prompts are the
same too: TRL's dataset is the sequence curator's seeded sampler draws, read in
order (shuffle_dataset=False), so step k of each side samples the same P
prompts (the completions still differ: the two sides use different random
streams). Shared settings:
sampling at temperature 1.0 with no top-k / top-p, at most `--max-new-tokens`
new tokens, stop at EOS; the same reward (curator's `Verifier`, one worker pool
used by both sides: 1.0 for a correct lab answer, else 0.0); no KL term and no
reference model (curator kl_coef=0, TRL beta=0); PPO clip 0.2 / 0.2; token-mean
loss over the batch (TRL loss_type="dapo"); group-std advantages; AdamW with
betas (0.9, 0.99), no weight decay, the same lr, constant schedule, gradient
norm clipped at 1.0; no dropout; no gradient checkpointing (TRL turns it on by
default, curator never uses it); no bf16 (TRL defaults to it); no vLLM; no
logging, reporting, saving or evaluation. LoRA: r=16, alpha=32, dropout 0 on
the same target modules (every q/k/v/o/gate/up/down projection; curator picks
these itself, TRL gets them in a peft LoraConfig).

What is timed:

- curator: wall time of `trainer.step()`: drawing prompts, sampling (curator's
  KV-cache loop), decoding, the verifier, advantages, the loss forward pass,
  backward, gradient clipping, the optimizer and scheduler steps, and the
  step's history records (handed to a no-op callback).
- TRL: the interval between two consecutive `on_step_end` callbacks, i.e. one
  whole iteration of the Trainer loop: fetching the batch from the dataloader,
  `training_step` (generation with `model.generate`, decoding, the reward,
  advantages, metrics, the loss forward pass, backward), gradient clipping, the
  optimizer and scheduler steps, zero_grad and the (empty) log/save/eval check.
  The narrower `on_step_begin` -> `on_step_end` span, which leaves out the batch
  fetch, is printed as well; the two differ by well under a millisecond here.

Each side runs one warm-up step, then `--steps` timed steps; the median is
reported. Generation time (curator: `HFBackend.generate`; TRL: `_generate`, its
tokenize + generate + decode) and reward time (the verifier call) are measured
with thin wrappers on each side; "update" is the rest of the step. Completion
tokens per step count generated tokens up to and including EOS on both sides,
so a difference in where the two sides stop shows up there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings

import torch

from curator.pipeline import LAB_DATA, LAB_MODEL
from curator.trainers.grpo import EpochSampler, Example, GRPOConfig, GRPOTrainer

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
INSTALL = "pip install -c constraints/cpu.txt -e '.[bench]'"


class Clock:
    """Accumulates the wall time of calls to a wrapped function, per step."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t
        return timed

    def take(self) -> float:
        s, self.seconds = self.seconds, 0.0
        return s


def load_model(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(path)
    return model, tok


def load_problems(n: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in (LAB_DATA / "train.jsonl").read_text().splitlines() if line.strip()]
    return rows[:n] if n else rows


def run_curator(args, lora: bool, verifier) -> dict:
    model, tok = load_model(args.model)
    examples = [Example(str(i), r["prompt"], r["answer"]) for i, r in enumerate(load_problems())]
    config = GRPOConfig(steps=args.steps + 1, prompts_per_step=args.prompts, group_size=args.group,
                        max_new_tokens=args.max_new_tokens, temperature=1.0, lr=args.lr, grad_clip=1.0,
                        kl_coef=0.0, minibatches=1, dynamic_sampling=False, lora=lora, lora_r=16,
                        lora_alpha=32, seed=args.seed)
    gen_clock, reward_clock = Clock(), Clock()
    trainer = GRPOTrainer(model, tok, examples, reward_clock.wrap(verifier.verify_batch), config)
    tokens: list[int] = []
    lengths: list[list[int]] = []
    generate = trainer.backend.generate

    def counting_generate(*a, **kw):
        out = generate(*a, **kw)
        lens = [c.length + (c.finish_reason == "stop") for comps in out for c in comps]
        tokens.append(sum(lens))
        lengths.append(lens)
        return out

    trainer.backend.generate = gen_clock.wrap(counting_generate)
    steps, gens, rewards = [], [], []
    for i in range(args.steps + 1):
        t = time.perf_counter()
        trainer.step()
        dt = time.perf_counter() - t
        g, r = gen_clock.take(), reward_clock.take()
        if i:  # step 0 is the warm-up
            steps.append(dt)
            gens.append(g)
            rewards.append(r)
    timed_lengths = [x for lens in lengths[1:] for x in lens]
    return {
        "step": steps, "gen": gens, "reward": rewards, "tokens": tokens[1:],
        "max_len": max(timed_lengths), "trainable": sum(p.numel() for p in trainer.model.parameters()
                                                         if p.requires_grad),
    }


def run_trl(args, lora: bool, verifier) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    model, tok = load_model(args.model)
    problems = load_problems()
    # The prompts curator's sampler draws in its first steps, in its order: TRL reads them unshuffled,
    # so step k of both sides samples from the same P prompts.
    order = EpochSampler(len(problems), args.seed).draw((args.steps + 1) * args.prompts)
    dataset = Dataset.from_list([{"prompt": problems[i]["prompt"], "answer": problems[i]["answer"]} for i in order])
    reward_clock, gen_clock = Clock(), Clock()
    tokens: list[int] = []
    lengths: list[list[int]] = []

    def lab_correct(completions, answer, completion_ids=None, **kwargs) -> list[float]:
        """TRL reward-function signature; `answer` is the dataset column, repeated per completion."""
        if completion_ids is not None:  # ids up to and including EOS (TRL masks what follows it)
            lens = [len(ids) for ids in completion_ids]
            tokens.append(sum(lens))
            lengths.append(lens)
        return [float(o.reward) for o in verifier.verify_batch(list(completions), list(answer))]

    reward = reward_clock.wrap(lab_correct)
    reward.__name__ = "lab_correct"

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.begin = self.last_end = None
            self.full: list[float] = []  # on_step_end -> on_step_end: one whole loop iteration
            self.inner: list[float] = []  # on_step_begin -> on_step_end
            self.gen: list[float] = []
            self.reward: list[float] = []

        def on_step_begin(self, args_, state, control, **kw):
            self.begin = time.perf_counter()
            if self.last_end is None:
                self.last_end = self.begin

        def on_step_end(self, args_, state, control, **kw):
            now = time.perf_counter()
            self.full.append(now - self.last_end)
            self.inner.append(now - self.begin)
            self.gen.append(gen_clock.take())
            self.reward.append(reward_clock.take())
            self.last_end = now

    out_dir = tempfile.mkdtemp(prefix="grpo-step-trl-")
    config = TRLConfig(
        output_dir=out_dir, use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
        use_vllm=False, max_steps=args.steps + 1, per_device_train_batch_size=args.prompts * args.group,
        gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=1,
        num_generations=args.group, max_completion_length=args.max_new_tokens, temperature=1.0, top_k=0,
        top_p=1.0, min_p=None, repetition_penalty=1.0, beta=0.0, epsilon=0.2, epsilon_high=0.2,
        shuffle_dataset=False, loss_type="dapo", scale_rewards="group", mask_truncated_completions=False, learning_rate=args.lr,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.99,
        optim="adamw_torch", max_grad_norm=1.0, disable_dropout=True, report_to="none",
        logging_steps=10**6, save_strategy="no", eval_strategy="no", disable_tqdm=True, log_completions=False,
        seed=args.seed, dataloader_num_workers=0,
    )
    peft_config = None
    if lora:
        targets = [n for n in TARGETS if any(name.endswith(n) for name, _ in model.named_modules())]
        peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets,
                                 task_type="CAUSAL_LM")
    timer = StepTimer()
    trainer = TRLTrainer(model=model, reward_funcs=reward, args=config, train_dataset=dataset,
                         processing_class=tok, peft_config=peft_config, callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # the end-of-training summary line
    trainer._generate = gen_clock.wrap(trainer._generate)
    torch.set_num_threads(args.threads)  # in case the Trainer or accelerate touched it
    try:
        t = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)  # nothing is saved there; the Trainer wants the folder
    timed_lengths = [x for lens in lengths[1:] for x in lens]
    return {
        "step": timer.full[1:], "inner": timer.inner[1:], "gen": timer.gen[1:], "reward": timer.reward[1:],
        "tokens": tokens[1:], "max_len": max(timed_lengths) if timed_lengths else None, "train_wall": wall,
        "first_step": timer.full[0],
        "trainable": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    }


def med(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(LAB_MODEL))
    ap.add_argument("--prompts", type=int, default=16, help="P: prompts per step")
    ap.add_argument("--group", type=int, default=8, help="G: completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per side, after one warm-up step")
    ap.add_argument("--modes", default="full,lora", help="comma-separated: full, lora")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in ("full", "lora") for m in modes) or not modes:
        ap.error("--modes takes full, lora or both")
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    try:
        import trl
    except ImportError:
        print(f"trl is not installed, so there is nothing to compare against; install it with\n    {INSTALL}")
        return 0

    import peft
    import transformers

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    transformers.utils.logging.disable_progress_bar()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, "
          f"peft {peft.__version__}; {args.threads} torch thread(s)")
    print(f"model {args.model}; P={args.prompts} prompts x G={args.group}, max {args.max_new_tokens} new tokens, "
          f"T=1.0; 1 warm-up + median of {args.steps} steps per side\n")

    from curator.verify import Verifier

    results = {}
    with Verifier() as verifier:
        verifier.verify_batch(["\\boxed{1}"], ["1"])  # start the workers before any clock runs
        for mode in modes:
            lora = mode == "lora"
            cur = run_curator(args, lora, verifier)
            ref = run_trl(args, lora, verifier)
            results[mode] = (cur, ref)
            for name, r in (("curator", cur), ("trl", ref)):
                extra = (f"; begin->end {med(r['inner']):.3f}, train() {r['train_wall']:.2f} s for "
                         f"{args.steps + 1} steps (first {r['first_step']:.2f})") if name == "trl" else ""
                print(f"[{mode}] {name:>7}: steps {', '.join(f'{s:.3f}' for s in r['step'])} s{extra}")

    print()
    print("| mode | trainable params | curator s/step | TRL s/step | TRL / curator | "
          "curator gen / reward / update s | TRL gen / reward / update s | "
          "completion tokens per step, curator / TRL (max length) |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, (cur, ref) in results.items():
        parts = []
        for r in (cur, ref):
            s, g, w = med(r["step"]), med(r["gen"]), med(r["reward"])
            upd = med([a - b - c for a, b, c in zip(r["step"], r["gen"], r["reward"])])
            parts.append(f"{g:.3f} / {w:.3f} / {upd:.3f}")
        ratio = med(ref["step"]) / med(cur["step"])
        tok = (f"{med(cur['tokens']):.0f} / {med(ref['tokens']):.0f} "
               f"({cur['max_len']} / {ref['max_len']})")
        print(f"| {mode} | {cur['trainable']:,} / {ref['trainable']:,} | {med(cur['step']):.3f} | "
              f"{med(ref['step']):.3f} | **{ratio:.2f}x** | {parts[0]} | {parts[1]} | {tok} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
