"""Batched sampling with a KV cache for any `transformers` causal LM.

`sample(model, tokenizer, prompts, n, ...)` returns, per prompt, n completions
with their token ids, lengths and finish reasons. It is a plain decode loop
rather than `model.generate`: prompts are left-padded once, every prompt is
repeated n times, the cache grows by one token per step, and rows that have
emitted EOS stop being sampled (they receive pad). Positions come from the
attention mask, so left padding does not shift them.

What keeps the loop fast at small model sizes (benchmarks/sampling.py; the
numbers are in benchmarks/RESULTS.md, "sampling"):

- identical prompt rows (a prompt repeated n times) are prefilled once and the
  cache is then expanded to all rows;
- rows that have emitted EOS are dropped from the batch and from the KV cache,
  so later steps only compute the rows still running;
- rows are dropped with `index_select` (`Cache.reorder_cache`) where the cache
  is a plain `DynamicCache`, several times cheaper on CPU than the fancy
  indexing of `Cache.batch_select_indices`, which is the fallback;
- for the architectures listed in `_PADDING_MASK_MODELS` running `sdpa`, the
  decode steps get a ready 4D padding mask, sliced from one built up front,
  instead of the model rebuilding it from the 2D mask at every step.

Any cache that cannot drop rows still works: finished rows then stay in the
batch and keep receiving pad. On CPU the number of finished rows is read every
step (it costs nothing there); on an accelerator it is read every
`_SYNC_EVERY_ACCEL` steps so that the host does not wait on the device each step.
"""

from __future__ import annotations

from typing import Callable

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

from curator.trainers.rollout import Completion
from curator.trainers.tensors import encode_prompts

# Layer types whose `reorder_cache` is a plain `index_select` over the batch dimension of keys and values.
_INDEX_SELECT_LAYERS = (DynamicLayer, DynamicSlidingWindowLayer)
# Model types whose only use of the 2D attention mask is `create_causal_mask`, which returns a 4D mask as is.
_PADDING_MASK_MODELS = frozenset({"llama", "gpt2", "qwen2", "qwen3", "mistral"})
# How many decode steps run between two reads of the finished-row count (a host-device sync off the CPU).
_SYNC_EVERY_CPU = 1
_SYNC_EVERY_ACCEL = 4


def _row_selector(cache) -> Callable[[torch.Tensor], None] | None:
    """A function keeping only the given batch rows of `cache` (indices may repeat), or None if it cannot."""
    layers = getattr(cache, "layers", None)
    if type(cache) is DynamicCache and layers and all(type(layer) in _INDEX_SELECT_LAYERS for layer in layers):
        return cache.reorder_cache
    if layers and hasattr(cache, "batch_select_indices") and all(
        hasattr(layer, "batch_select_indices") for layer in layers
    ):
        return cache.batch_select_indices
    return None


def _padding_mask_ok(model, cache) -> bool:
    """True where a 4D boolean (B, 1, 1, L) padding mask is what the model would build itself for one new token."""
    config = model.config
    return (
        getattr(config, "model_type", None) in _PADDING_MASK_MODELS
        and getattr(config, "_attn_implementation", None) == "sdpa"
        and type(cache) is DynamicCache
        and bool(cache.layers)
        and all(type(layer) is DynamicLayer for layer in cache.layers)
    )


def _prefill(model, input_ids, attention_mask, positions):
    """Prompt forward pass -> (last-position logits (B, V), cache, row selector or None).

    Identical rows (same ids and mask) are computed once and the cache is expanded afterwards,
    when the cache can select rows."""
    B, T = input_ids.shape
    uniq, inverse = torch.unique(
        torch.cat([input_ids, attention_mask.to(input_ids.dtype)], dim=1), dim=0, return_inverse=True
    )
    if uniq.shape[0] < B:
        u_ids, u_mask = uniq[:, :T], uniq[:, T:].to(attention_mask.dtype)
        u_pos = (u_mask.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=u_ids, attention_mask=u_mask, position_ids=u_pos, use_cache=True)
        cache = out.past_key_values
        select = _row_selector(cache)
        if select is not None:
            select(inverse)
            return out.logits[:, -1, :].index_select(0, inverse), cache, select
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True)
    cache = out.past_key_values
    return out.logits[:, -1, :], cache, _row_selector(cache)


def _next_tokens(logits, temperature, top_k, generator):
    if temperature <= 0:
        return logits.argmax(-1)
    scores = logits.float() / temperature
    if top_k:
        kth = scores.topk(top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


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
    B, T = input_ids.shape
    device = input_ids.device
    if max_new_tokens <= 0:
        return torch.empty((B, 0), dtype=torch.long, device=device)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits, cache, select = _prefill(model, input_ids, attention_mask, positions)

    # Masks for the decode steps: step s sees the prompt plus s generated tokens.
    mask = torch.cat([attention_mask, attention_mask.new_ones((B, max_new_tokens))], dim=1)
    if _padding_mask_ok(model, cache):
        mask = mask.bool()[:, None, None, :]  # what create_causal_mask builds for one query token
    next_pos = positions[:, -1:] + 1  # (B, 1)
    result = torch.full((B, max_new_tokens), pad_id, dtype=torch.long, device=device)
    rows = torch.arange(B, device=device)  # result row of each batch row
    done = torch.zeros(B, dtype=torch.bool, device=device)
    n_steps = torch.zeros((), dtype=torch.long, device=device)  # steps taken while some row was running
    sync_every = _SYNC_EVERY_CPU if device.type == "cpu" else _SYNC_EVERY_ACCEL
    for step in range(max_new_tokens):
        if sync_every > 1:
            n_steps += ~done.all()
        tok = _next_tokens(logits, temperature, top_k, generator).masked_fill(done, pad_id)
        result[rows, step] = tok
        done |= tok == eos_id
        if step + 1 == max_new_tokens:
            break
        if (step + 1) % sync_every == 0:
            n_done = int(done.sum())
            if n_done == rows.shape[0]:
                break
            if n_done and select is not None:
                keep = (~done).nonzero().squeeze(1)
                select(keep)
                rows, tok, next_pos, mask, done = (
                    t.index_select(0, keep) for t in (rows, tok, next_pos, mask, done)
                )
        out = model(input_ids=tok.unsqueeze(1), attention_mask=mask[..., : T + step + 1], position_ids=next_pos,
                    past_key_values=cache, use_cache=True)
        if out.past_key_values is not cache:  # a model may hand back a new cache object
            cache = out.past_key_values
            select = _row_selector(cache)
        logits = out.logits[:, -1, :]
        next_pos = next_pos + 1
    width = step + 1 if sync_every == 1 else int(n_steps)
    return result[:, :width]


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
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    rows = [p for p in prompts for _ in range(n)]
    flat: list[Completion] = []
    for start in range(0, len(rows), batch_size):
        ids, mask = encode_prompts(tokenizer, rows[start : start + batch_size])
        gen = sample_ids(model, ids.to(device), mask.to(device), max_new_tokens, temperature,
                         tokenizer.eos_token_id, tokenizer.pad_token_id, generator)
        flat.extend(split_completions(tokenizer, gen))
    return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]
