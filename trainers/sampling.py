"""Batched sampling with a KV cache for any `transformers` causal LM.

`sample(model, tokenizer, prompts, n, ...)` returns, per prompt, n completions
with their token ids, lengths and finish reasons. It is a plain decode loop
rather than `model.generate`: prompts are left-padded once, every prompt is
repeated n times, the cache grows by one token per step, and rows that have
emitted EOS stop being sampled (they receive pad). Positions come from the
attention mask, so left padding does not shift them.
"""

from __future__ import annotations

import torch

from curator.trainers.rollout import Completion
from curator.trainers.tensors import encode_prompts


@torch.inference_mode()
def sample_ids(
    model,
    input_ids: torch.Tensor,  # (B, T) left-padded
    attention_mask: torch.Tensor,  # (B, T)
    max_new_tokens: int,
    temperature: float,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    top_k: int = 0,
) -> torch.Tensor:
    """Generated ids (B, <=max_new_tokens), pad after EOS; temperature 0 means greedy."""
    B = input_ids.shape[0]
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True)
    cache = out.past_key_values
    logits = out.logits[:, -1, :]  # (B, V)
    next_pos = positions[:, -1:] + 1  # (B, 1)
    done = torch.zeros(B, dtype=torch.bool)
    steps = []
    for _ in range(max_new_tokens):
        if temperature <= 0:
            tok = logits.argmax(-1)
        else:
            scores = logits.float() / temperature
            if top_k:
                kth = scores.topk(top_k, dim=-1).values[:, -1:]
                scores = scores.masked_fill(scores < kth, float("-inf"))
            probs = torch.softmax(scores, dim=-1)
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        tok = tok.masked_fill(done, pad_id)
        steps.append(tok)
        done |= tok == eos_id
        if bool(done.all()):
            break
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((B, 1))], dim=1)
        out = model(input_ids=tok.unsqueeze(1), attention_mask=attention_mask, position_ids=next_pos,
                    past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logits = out.logits[:, -1, :]
        next_pos = next_pos + 1
    return torch.stack(steps, dim=1) if steps else torch.empty((B, 0), dtype=torch.long)


def split_completions(tokenizer, generated: torch.Tensor) -> list[Completion]:
    """Cut each row at EOS and decode it."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    out = []
    for row in generated.tolist():
        if eos in row:
            ids, reason = row[: row.index(eos)], "stop"
        else:
            ids, reason = [t for t in row if t != pad], "length"
        out.append(Completion(tokenizer.decode(ids), tuple(ids), reason, len(ids)))
    return out


def sample(
    model,
    tokenizer,
    prompts: list[str],
    n: int = 1,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    seed: int | None = None,
    batch_size: int = 512,
) -> list[list[Completion]]:
    """n completions for each prompt, sampled in batches of at most `batch_size` rows."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    rows = [p for p in prompts for _ in range(n)]
    flat: list[Completion] = []
    for start in range(0, len(rows), batch_size):
        ids, mask = encode_prompts(tokenizer, rows[start : start + batch_size])
        gen = sample_ids(model, ids, mask, max_new_tokens, temperature,
                         tokenizer.eos_token_id, tokenizer.pad_token_id, generator)
        flat.extend(split_completions(tokenizer, gen))
    return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]
