"""Turning text into padded tensors, shared by SFT, sampling, GRPO and per-example gradients."""

from __future__ import annotations

import torch


def encode_prompts(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and attention mask, (B, T) each."""
    enc = tokenizer(prompts, padding=True, return_tensors="pt", padding_side="left")
    return enc["input_ids"], enc["attention_mask"]


def pack(prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded prompt+completion rows: ids (B, T), attention mask (B, T), and the mask of
    positions that predict a completion token (B, T-1): target[i, t] is True when ids[i, t+1]
    belongs to row i's completion."""
    rows = [p + c for p, c in zip(prompt_ids, completion_ids)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    target = torch.zeros((len(rows), width - 1), dtype=torch.bool)
    for i, (r, p) in enumerate(zip(rows, prompt_ids)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        target[i, len(p) - 1 : len(r) - 1] = True
    return ids, mask, target


def encode_pairs(tokenizer, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokenized `prompt + completion + eos` rows through `pack`: ids, mask, target (B, T-1)."""
    prompt_ids = tokenizer([p for p, _ in pairs])["input_ids"]
    completion_ids = tokenizer([c for _, c in pairs], add_special_tokens=False)["input_ids"]
    return pack(prompt_ids, [c + [tokenizer.eos_token_id] for c in completion_ids], tokenizer.pad_token_id)
