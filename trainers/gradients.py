"""Per-example gradients of the GRPO surrogate under a fixed random LoRA adapter.

For each example: its correct rollouts (at most 20), per rollout the surrogate
-(A * exp(logp - logp.detach())).mean() over the completion's tokens, its
gradient with respect to the adapter, averaged over the rollouts: one vector.

The adapter is LoRA r 16, alpha 32 on every attention and MLP projection,
A drawn with seed 42 and B = 0 (LoRA's standard initialisation): the adapter
leaves the model's function unchanged, the gradient with respect to A is zero,
and the gradient with respect to B_m is (dL/dW_m) A_m^T -- the full weight
gradient of module m seen through the fixed random A_m. The vector is the
concatenation of the B gradients.

Batched, not one backward pass per rollout: rollouts of many examples go
through one forward and one backward pass, and per-rollout gradients of each
B come from hooks (the input to B and the gradient at its output):
grad_B[row] = sum_t g[row, t]^T a[row, t]. The loss is a sum of per-rollout
surrogates, so a row's output gradient holds that rollout's contribution only.
`reference_gradients` does it the public code's way (one backward per rollout)
for the benchmark and the agreement test.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from curator.trainers.tensors import encode_pairs

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class GradConfig:
    lora_r: int = 16
    lora_alpha: int = 32
    lora_seed: int = 42
    max_rollouts: int = 20  # correct rollouts averaged per example
    batch_rows: int = 128  # rollouts per forward/backward pass


def attach_random_lora(model, config: GradConfig):
    """The model wrapped with the fixed adapter; only the B matrices require gradients."""
    from peft import LoraConfig, get_peft_model

    targets = [t for t in TARGETS if any(n.endswith(t) for n, _ in model.named_modules())]
    if not targets:
        raise ValueError("no attention/MLP projection found to attach LoRA to (expected q_proj, ..., down_proj)")
    torch.manual_seed(config.lora_seed)
    peft_model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                  lora_dropout=0.0, target_modules=targets))
    for name, p in peft_model.named_parameters():
        p.requires_grad_("lora_B" in name)
    return peft_model.eval()


def _b_modules(model) -> list[tuple[str, torch.nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if n.endswith("lora_B.default")]


def dimension(model) -> int:
    return sum(m.weight.numel() for _, m in _b_modules(model))


def _rows(tokenizer, prompts: list[str], completions: list[str], device) -> tuple[torch.Tensor, ...]:
    """Right-padded prompt+completion+eos ids (R, T), mask, completion-target mask (R, T-1)."""
    ids, mask, target = encode_pairs(tokenizer, list(zip(prompts, completions)))
    return ids.to(device), mask.to(device), target.to(device)


def _surrogate(model, ids, mask, target, adv) -> torch.Tensor:
    """Sum over rows of -(A * ratio).mean over the row's completion tokens; ratio == 1 in value."""
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, :-1]
    logp = torch.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    ratio = torch.exp(logp - logp.detach())
    per_row = (ratio * target).sum(1) / target.sum(1).clamp(min=1)  # (R,)
    return -(adv * per_row).sum()


def rollout_gradients(model, tokenizer, prompts: list[str], completions: list[str], adv: torch.Tensor,
                      batch_rows: int = 128) -> torch.Tensor:
    """Per-rollout gradient vectors (R, D) of the surrogate w.r.t. the adapter's B matrices."""
    device = next(model.parameters()).device
    mods = _b_modules(model)
    acts: dict[str, torch.Tensor] = {}
    grads: dict[str, torch.Tensor] = {}
    hooks = []
    for name, m in mods:
        hooks.append(m.register_forward_hook(lambda mod, inp, out, n=name: acts.__setitem__(n, inp[0].detach())))
        hooks.append(m.register_full_backward_hook(
            lambda mod, gin, gout, n=name: grads.__setitem__(n, gout[0].detach())))
    out = []
    try:
        warnings.filterwarnings("ignore", message="Full backward hook is firing")  # inputs need no grad: expected
        for start in range(0, len(prompts), batch_rows):
            sl = slice(start, start + batch_rows)
            ids, mask, target = _rows(tokenizer, prompts[sl], completions[sl], device)
            model.zero_grad(set_to_none=True)
            _surrogate(model, ids, mask, target, adv[sl].to(device)).backward()
            # per row: grad_B = sum_t g[t]^T a[t]  -> (R, out, r)
            out.append(torch.cat([torch.einsum("bto,btr->bor", grads[n], acts[n]).flatten(1) for n, _ in mods],
                                 dim=1).cpu())
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
    return torch.cat(out) if out else torch.empty(0, dimension(model))


def reference_gradients(model, tokenizer, prompts: list[str], completions: list[str], adv: torch.Tensor) -> torch.Tensor:
    """The public code's procedure: one backward pass per rollout. (R, D)."""
    device = next(model.parameters()).device
    params = [m.weight for _, m in _b_modules(model)]
    rows = []
    for i in range(len(prompts)):
        ids, mask, target = _rows(tokenizer, prompts[i : i + 1], completions[i : i + 1], device)
        model.zero_grad(set_to_none=True)
        _surrogate(model, ids, mask, target, adv[i : i + 1].to(device)).backward()
        rows.append(torch.cat([p.grad.flatten() for p in params]).cpu())
    model.zero_grad(set_to_none=True)
    return torch.stack(rows)


def full_parameter_gradients(model, tokenizer, prompts: list[str], completions: list[str], adv: torch.Tensor,
                             groups: list[int]) -> torch.Tensor:
    """Exact full-parameter gradient of each group's mean surrogate (one backward per group). (E, P)."""
    device = next(model.parameters()).device
    params = [p for p in model.parameters()]
    for p in params:
        p.requires_grad_(True)
    out = []
    for g in sorted(set(groups)):
        idx = [i for i, x in enumerate(groups) if x == g]
        ids, mask, target = _rows(tokenizer, [prompts[i] for i in idx], [completions[i] for i in idx], device)
        model.zero_grad(set_to_none=True)
        (_surrogate(model, ids, mask, target, adv[idx].to(device)) / len(idx)).backward()
        out.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params]).cpu())
    model.zero_grad(set_to_none=True)
    return torch.stack(out)
