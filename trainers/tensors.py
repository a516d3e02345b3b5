"""Turning text into padded tensors, shared by SFT, sampling and GRPO."""

from __future__ import annotations

import torch


def encode_prompts(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and attention mask, (B, T) each."""
    enc = tokenizer(prompts, padding=True, return_tensors="pt", padding_side="left")
    return enc["input_ids"], enc["attention_mask"]


def encode_pairs(tokenizer, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded `prompt + completion + eos` ids, mask, and labels (-100 outside completions)."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    prompt_ids = tokenizer([p for p, _ in pairs])["input_ids"]
    completion_ids = tokenizer([c for _, c in pairs], add_special_tokens=False)["input_ids"]
    rows = [p + c + [eos] for p, c in zip(prompt_ids, completion_ids)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, p) in enumerate(zip(rows, prompt_ids)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        labels[i, len(p) : len(r)] = torch.tensor(r[len(p) :])
    return ids, mask, labels
