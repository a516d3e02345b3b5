"""Supervised warm start: next-token loss on completions only.

Used by the arithmetic lab to teach a freshly initialized model the trace
format before any RL. A plain loop: AdamW, linear warmup then cosine decay,
gradient clipping at 1.0, one fresh batch per step from `batch_fn(step)`.
Deterministic for a seed on one machine (torch's CPU kernels, fixed threads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from curator.trainers.tensors import encode_pairs


@dataclass
class SFTConfig:
    steps: int = 600
    lr: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.01
    seed: int = 0


def lr_lambda(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def supervised_warm_start(
    model: torch.nn.Module,
    tokenizer,
    batch_fn: Callable[[int], list[tuple[str, str]]],
    config: SFTConfig,
    on_step: Callable[[int, float], None] = lambda step, loss: None,
) -> list[float]:
    """Train `model` in place on (prompt, completion) pairs; return the loss per step."""
    torch.manual_seed(config.seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95),
                            weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, config.warmup, config.steps))
    losses = []
    for step in range(config.steps):
        pairs = batch_fn(step)
        ids, mask, target = encode_pairs(tokenizer, pairs)  # (B, T), (B, T), (B, T-1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        labels = ids[:, 1:].masked_fill(~target, -100)  # loss on completion tokens only
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        on_step(step, losses[-1])
    model.eval()
    return losses
