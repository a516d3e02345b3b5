"""GRPO with dynamic sampling, readable top to bottom.

One step:
  1. draw P prompts from an epoch-shuffled pool (seeded; position checkpointed)
  2. sample G completions per prompt from the current policy (T = 1.0)
  3. score them with the reward function (binary: 1.0 only for "correct")
  4. drop groups whose G rewards are all equal; draw another P prompts and
     repeat, at most `max_rounds` times, until P groups remain
  5. advantage per completion: (r - mean_group) / (std_group + 1e-6)
  6. one optimizer step on the clipped surrogate, token-mean over the batch
  7. emit one history record per example drawn (kept or dropped)

Departures from textbook GRPO (Shao et al. 2024), all as in the published
unlearnability study's code or DAPO:
- dynamic sampling (DAPO): zero-variance groups carry no gradient and are
  dropped; more prompts are drawn to fill the batch. Bounded by `max_rounds`;
  a step where no group survives raises `NoSignalError` saying whether the
  data is too easy or too hard. A batch still short after `max_rounds` is
  used as it is (the step record says how many groups it had). When the last
  round overfills the batch, the surplus groups are recorded as kept (they
  passed the filter) but only the first P enter the update, as in DAPO.
- token-mean loss over all completion tokens of the batch (DAPO), not a mean
  per sequence then over sequences.
- the group std is the unbiased one (torch.std), as in verl and TRL.
- clip-higher (DAPO): `clip_high` may differ from `clip_low` (0.28 vs 0.2).
- KL to the initial policy is optional (k3 estimator, `kl_coef`, default 0).
- `minibatches` optimizer steps per batch (default 1). With one, the policy
  that sampled is the policy being updated, the ratio is exactly 1 and PPO
  clipping never triggers; clip fractions are then 0 by construction.
- the update runs in length-sorted micro-batches of `micro_rows` rows, each
  cut to its own longest row, with gradients accumulated against the token
  count of the whole minibatch: the same loss without computing padding.
- timeouts and verifier errors get reward 0 for the update but are counted
  apart (n_timeout, n_error) in the records.

The trainer knows nothing of storage: records go to `on_records(kind, rows)`.
"""

from __future__ import annotations

import copy
import random
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

from curator.trainers.rollout import Completion, HFBackend
from curator.trainers.tensors import pack


class NoSignalError(RuntimeError):
    """No group with differing rewards could be drawn: nothing to learn from."""


@dataclass
class GRPOConfig:
    steps: int = 150
    prompts_per_step: int = 32  # P: groups per update
    group_size: int = 8  # G: completions per prompt
    max_new_tokens: int = 48
    temperature: float = 1.0  # rollout temperature
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 0  # linear warmup, then constant
    grad_clip: float = 1.0
    clip_low: float = 0.2
    clip_high: float = 0.2  # 0.28 for DAPO's clip-higher
    kl_coef: float = 0.0  # k3 KL to the initial policy; 0 disables it (and the reference model)
    minibatches: int = 1  # optimizer steps per batch
    micro_rows: int = 32  # rows per forward/backward, sorted by length and trimmed of padding (0: one pass)
    dynamic_sampling: bool = True
    max_rounds: int = 4  # generation rounds per step before giving up on filling the batch
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    seed: int = 0
    keep_completions: str = "none"  # none | correct | all | k (an integer: at most k per example per step)

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError("group_size must be at least 2: GRPO compares completions within a group")
        if self.prompts_per_step < 1 or self.steps < 0:
            raise ValueError("prompts_per_step must be >= 1 and steps >= 0")
        if not (0 <= self.clip_low < 1 and self.clip_high >= 0):
            raise ValueError("clip_low must be in [0, 1) and clip_high >= 0")
        if self.minibatches < 1 or self.minibatches > self.prompts_per_step:
            raise ValueError("minibatches must be between 1 and prompts_per_step")
        if self.micro_rows < 0:
            raise ValueError("micro_rows must be 0 (one pass) or a positive number of rows")
        if self.keep_completions not in ("none", "correct", "all") and not self.keep_completions.isdigit():
            raise ValueError("keep_completions must be none, correct, all, or an integer k")


@dataclass(frozen=True)
class Example:
    example_id: str
    prompt: str
    answer: str


@dataclass
class StepStats:
    step: int
    mean_reward: float  # over every completion sampled this step (kept or not)
    kept_groups: int
    drawn_groups: int
    rounds: int
    loss: float
    mean_length: float
    clip_frac: float
    kl: float


# -- pure pieces ---------------------------------------------------------------

def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(num_groups, G) rewards -> advantages (r - mean) / (std + eps), std unbiased."""
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True)
    return (rewards - mean) / (std + eps)


def clipped_token_loss(
    logp: torch.Tensor,  # (B, T) log-probs of the sampled tokens under the current policy
    old_logp: torch.Tensor,  # (B, T) under the policy that sampled them
    advantages: torch.Tensor,  # (B,)
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO-clip loss and a per-token "clipped" flag, both (B, T)."""
    ratio = torch.exp(logp - old_logp)
    adv = advantages.unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high) * adv
    loss = -torch.minimum(unclipped, clipped)
    is_clipped = ((ratio < 1 - clip_low) & (adv < 0)) | ((ratio > 1 + clip_high) & (adv > 0))
    return loss, is_clipped


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference): exp(d) - d - 1, d = ref - logp."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def token_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p(ids[:, t] | ids[:, :t]) for t >= 1, shape (B, T-1)."""
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, :-1]
    if temperature != 1.0:
        logits = logits / temperature
    return selected_logprobs(logits, ids[:, 1:])


def selected_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[..., ids] without a second vocabulary-sized tensor: x_id - logsumexp(x).

    With a 150k vocabulary and long completions the full log-softmax is the update's largest tensor;
    fp32 logits go through logsumexp at once, lower precision ones row by row in fp32."""
    if logits.dtype in (torch.float32, torch.float64):
        return logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    rows = []
    for row_logits, row_ids in zip(logits, ids):
        row = row_logits.float()
        rows.append(row.gather(-1, row_ids.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(row, dim=-1))
    return torch.stack(rows)


def merge_history(rows: list[dict]) -> list[dict]:
    """One record per example per step: an example drawn twice in a step (the sampler crossed an
    epoch between rounds) gets its counts summed, lengths averaged by samples, kept if any group was."""
    out: dict[str, dict] = {}
    for r in rows:
        if r["example_id"] not in out:
            out[r["example_id"]] = dict(r)
            continue
        m = out[r["example_id"]]
        n = m["n"] + r["n"]
        m["mean_length"] = (m["mean_length"] * m["n"] + r["mean_length"] * r["n"]) / n
        for k in ("n_correct", "n_timeout", "n_error"):
            m[k] += r[k]
        for k in ("clip_frac_correct", "clip_frac_incorrect"):
            vals = [v for v in (m[k], r[k]) if v is not None]
            m[k] = sum(vals) / len(vals) if vals else None
        m["n"] = n
        m["kept"] = m["kept"] or r["kept"]
    return list(out.values())


class EpochSampler:
    """Draws example indices epoch by epoch, a fresh seeded permutation each epoch."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(self.n))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def draw(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if self.pos == self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
            take = min(k - len(out), self.n - self.pos)
            out.extend(self._perm[self.pos : self.pos + take])
            self.pos += take
        return out

    def state(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load(self, state: dict) -> None:
        self.epoch, self.pos = state["epoch"], state["pos"]
        self._perm = self._permutation(self.epoch)


# -- the trainer -----------------------------------------------------------------

RewardFn = Callable[[list[str], list[str]], Sequence]  # (completions, golds) -> outcomes with .status, .reward


@dataclass
class _Group:
    example: Example
    completions: list[Completion]
    outcomes: list
    rewards: list[float]

    @property
    def kept(self) -> bool:
        return len(set(self.rewards)) > 1


class GRPOTrainer:
    """Owns the policy, its optimizer and the sampler; `step()` runs one GRPO step."""

    def __init__(
        self,
        model,
        tokenizer,
        examples: list[Example],
        reward_fn: RewardFn,
        config: GRPOConfig,
        on_records: Callable[[str, list[dict]], None] = lambda kind, rows: None,
        run_id: str = "run",
    ):
        if not examples:
            raise ValueError("GRPO needs at least one example")
        self.config = config
        self.tokenizer = tokenizer
        self.examples = examples
        self.reward_fn = reward_fn
        self.on_records = on_records
        self.run_id = run_id
        torch.manual_seed(config.seed)
        self.ref_model = None
        if config.lora:
            from peft import LoraConfig, get_peft_model

            targets = [n for n in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
                       if any(name.endswith(n) for name, _ in model.named_modules())]
            model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                     lora_dropout=0.0, target_modules=targets or None))
        elif config.kl_coef > 0:
            self.ref_model = copy.deepcopy(model).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        self.model = model
        self.device = next(model.parameters()).device
        self.model.eval()  # no dropout: sampling and scoring see the same function
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.betas,
                                           weight_decay=config.weight_decay)
        warm = max(1, config.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warm) if config.warmup_steps else 1.0)
        self.sampler = EpochSampler(len(examples), config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.backend = HFBackend(self.model, tokenizer)
        self.step_index = 0  # steps completed

    # -- one step --------------------------------------------------------------

    def step(self) -> StepStats:
        c = self.config
        step = self.step_index + 1
        groups: list[_Group] = []
        kept: list[_Group] = []
        rounds = 0
        while len(kept) < c.prompts_per_step and rounds < (c.max_rounds if c.dynamic_sampling else 1):
            rounds += 1
            drawn = [self.examples[i] for i in self.sampler.draw(c.prompts_per_step)]
            new = self._rollouts(drawn)
            groups.extend(new)
            kept.extend(g for g in new if g.kept or not c.dynamic_sampling)
        if not kept:
            raise NoSignalError(self._no_signal_message(groups, rounds))
        batch = kept[: c.prompts_per_step]
        loss, clip_flags, kl = self._update(batch)
        self.step_index = step

        records = merge_history([self._history_row(step, g, clip_flags.get(id(g))) for g in groups])
        self.on_records("history", records)
        rollouts = self._rollout_rows(step, groups)
        if rollouts:
            self.on_records("rollouts", rollouts)
        all_rewards = [r for g in groups for r in g.rewards]
        lengths = [comp.length for g in groups for comp in g.completions]
        flags = [f for v in clip_flags.values() for f in v[2]]
        return StepStats(
            step=step,
            mean_reward=sum(all_rewards) / len(all_rewards),
            kept_groups=sum(g.kept for g in groups),
            drawn_groups=len(groups),
            rounds=rounds,
            loss=loss,
            mean_length=sum(lengths) / len(lengths),
            clip_frac=sum(flags) / max(1, len(flags)),
            kl=kl,
        )

    def _rollouts(self, drawn: list[Example]) -> list[_Group]:
        c = self.config
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        samples = self.backend.generate([e.prompt for e in drawn], n=c.group_size,
                                        max_new_tokens=c.max_new_tokens, temperature=c.temperature, seed=seed)
        texts = [comp.text for comps in samples for comp in comps]
        golds = [e.answer for e in drawn for _ in range(c.group_size)]
        outcomes = list(self.reward_fn(texts, golds))
        groups = []
        for i, (e, comps) in enumerate(zip(drawn, samples)):
            outs = outcomes[i * c.group_size : (i + 1) * c.group_size]
            groups.append(_Group(e, comps, outs, [float(o.reward) for o in outs]))
        return groups

    def _sequences(self, batch: list[_Group]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded prompt+completion(+EOS) ids (B, T), attention mask, and completion-token mask (B, T-1)."""
        tok = self.tokenizer
        prompt_ids = tok([g.example.prompt for g in batch])["input_ids"]
        prompts, completions = [], []
        for g, p in zip(batch, prompt_ids):
            for comp in g.completions:
                prompts.append(p)
                completions.append(list(comp.token_ids) + ([tok.eos_token_id] if comp.finish_reason == "stop" else []))
        ids, mask, target = pack(prompts, completions, tok.pad_token_id)
        return ids.to(self.device), mask.to(self.device), target.to(self.device)

    def _update(self, batch: list[_Group]) -> tuple[float, dict, float]:
        c = self.config
        G = c.group_size
        rewards = torch.tensor([g.rewards for g in batch], device=self.device)  # (num_groups, G)
        adv = group_advantages(rewards).reshape(-1)  # (B,)
        ids, mask, target = self._sequences(batch)  # (B, T), (B, T), (B, T-1)
        ref_logp = None
        if c.kl_coef > 0:
            with torch.no_grad():
                if c.lora:
                    with self.model.disable_adapter():
                        ref_logp = token_logprobs(self.model, ids, mask, c.temperature)
                else:
                    ref_logp = token_logprobs(self.ref_model, ids, mask, c.temperature)
        old_logp = None
        if c.minibatches > 1:
            with torch.no_grad():
                old_logp = token_logprobs(self.model, ids, mask, c.temperature)

        group_chunks = [list(range(i, len(batch), c.minibatches)) for i in range(c.minibatches)]
        total_tokens = target.sum().clamp(min=1)
        lengths = mask.sum(dim=1)
        losses, kls = [], []
        clipped_all = torch.zeros_like(target)
        self.model.train()
        for chunk in group_chunks:
            if not chunk:
                continue
            rows = torch.tensor([gi * G + j for gi in chunk for j in range(G)], device=self.device)
            n_tok = target[rows].sum().clamp(min=1)  # token-mean over this minibatch's completion tokens
            # longest rows first, so each micro-batch is cut to a width close to its rows' own lengths
            order = rows[torch.argsort(lengths[rows], descending=True, stable=True)]
            parts = order.split(c.micro_rows) if c.micro_rows > 0 else (order,)
            self.optimizer.zero_grad(set_to_none=True)
            loss_sum, kl_sum = 0.0, 0.0
            for part in parts:
                w = int(lengths[part].max())
                logp = token_logprobs(self.model, ids[part, :w], mask[part, :w], c.temperature)  # (b, w-1)
                old = logp.detach() if old_logp is None else old_logp[part, : w - 1]
                tok_loss, clipped = clipped_token_loss(logp, old, adv[part], c.clip_low, c.clip_high)
                tmask = target[part, : w - 1]
                if ref_logp is not None:
                    kl_tok = k3_kl(logp, ref_logp[part, : w - 1])
                    tok_loss = tok_loss + c.kl_coef * kl_tok
                    kl_sum += float((kl_tok.detach() * tmask).sum())
                loss = (tok_loss * tmask).sum() / n_tok
                loss.backward()
                loss_sum += float(loss.detach())
                clipped_all[part, : w - 1] = clipped & tmask
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], c.grad_clip)
            self.optimizer.step()
            losses.append(loss_sum * float(n_tok) / float(total_tokens))
            if ref_logp is not None:
                kls.append(kl_sum / float(n_tok))
        self.scheduler.step()
        self.model.eval()

        # clip fraction per group: (correct tokens clipped / correct tokens, same for incorrect)
        flags: dict[int, tuple] = {}
        for gi, g in enumerate(batch):
            sl = slice(gi * G, (gi + 1) * G)
            tm, cl = target[sl], clipped_all[sl]
            good = torch.tensor([r > 0 for r in g.rewards], device=self.device).unsqueeze(1)
            frac = lambda sel: float((cl & sel).sum() / (tm & sel).sum()) if bool((tm & sel).any()) else None
            flags[id(g)] = (frac(good & tm), frac(~good & tm), cl[tm].tolist())
        return sum(losses), flags, (sum(kls) / len(kls) if kls else 0.0)

    # -- records -----------------------------------------------------------------

    def _history_row(self, step: int, g: _Group, clip: tuple | None) -> dict:
        statuses = [o.status for o in g.outcomes]
        return {
            "run_id": self.run_id,
            "step": step,
            "example_id": g.example.example_id,
            "n": len(g.rewards),
            "n_correct": sum(s == "correct" for s in statuses),
            "n_timeout": sum(s == "timeout" for s in statuses),
            "n_error": sum(s == "error" for s in statuses),
            "mean_length": sum(comp.length for comp in g.completions) / len(g.completions),
            "clip_frac_correct": clip[0] if clip else None,
            "clip_frac_incorrect": clip[1] if clip else None,
            "kept": g.kept,
        }

    def _rollout_rows(self, step: int, groups: list[_Group]) -> list[dict]:
        mode = self.config.keep_completions
        if mode == "none":
            return []
        rows = []
        seen: dict[str, int] = {}  # an example drawn twice in a step continues its sample indices
        for g in groups:
            base = seen.get(g.example.example_id, 0)
            seen[g.example.example_id] = base + len(g.completions)
            picked = [(base + j, comp, o) for j, (comp, o) in enumerate(zip(g.completions, g.outcomes))
                      if mode != "correct" or o.status == "correct"]
            if mode.isdigit():
                picked = picked[: int(mode)]
            rows.extend({
                "run_id": self.run_id, "phase": "train", "step": step, "example_id": g.example.example_id,
                "sample_index": j, "completion": comp.text, "status": o.status, "reward": float(o.reward),
                "length": comp.length,
            } for j, comp, o in picked)
        return rows

    def _no_signal_message(self, groups: list[_Group], rounds: int) -> str:
        all_right = sum(all(r > 0 for r in g.rewards) for g in groups)
        all_wrong = sum(all(r == 0 for r in g.rewards) for g in groups)
        verdict = "too easy" if all_right > all_wrong else "too hard"
        return (
            f"step {self.step_index + 1}: none of {len(groups)} groups drawn in {rounds} rounds had differing "
            f"rewards ({all_right} all correct, {all_wrong} all wrong): the data is {verdict} for this model; "
            "raise --max-rounds or --group-size, or filter the data (curator probe shows pass rates)"
        )

    # -- state for checkpoints -------------------------------------------------------

    def state(self) -> dict:
        return {
            "step": self.step_index,
            "model": {k: v for k, v in self.model.state_dict().items()
                      if not self.config.lora or "lora_" in k},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "config": asdict(self.config),
        }

    def load_state(self, state: dict) -> None:
        missing, unexpected = self.model.load_state_dict(state["model"], strict=not self.config.lora)
        if unexpected:
            raise ValueError(f"checkpoint has weights this model lacks: {unexpected[:3]}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load(state["sampler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        self.step_index = state["step"]

    def policy(self):
        """The model to evaluate or save: LoRA merged into a copy when training LoRA."""
        if self.config.lora:
            return copy.deepcopy(self.model).merge_and_unload()
        return self.model


__all__ = [
    "Example", "GRPOConfig", "GRPOTrainer", "NoSignalError", "StepStats", "clipped_token_loss",
    "group_advantages", "k3_kl", "token_logprobs", "EpochSampler",
]