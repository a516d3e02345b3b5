"""Sampling throughput: curator's `hf` decode loop against `model.generate`, same batch.

    python benchmarks/sampling.py [--model data/lab/model] [--prompts 32] [--n 8] [--repeats 5]

Both sample 32 lab prompts x 8 samples at temperature 1.0 with at most 48 new
tokens and stop at EOS; tokens/s counts generated tokens up to and including
EOS. Each side runs once to warm up, then the two sides alternate `repeats`
times (so that a change in the load of a shared machine hits both); the best
and the median run of each side are printed, the ratio from the best runs and
from the medians. One torch thread (the setting the trainer uses on 2 cores).

`--prompts 256 --n 1` samples 256 distinct prompts once each, a batch in which
no two rows share a prompt.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from curator.lab.config import LabConfig
from curator.lab.data import splits
from curator.pipeline import LAB_MODEL
from curator.trainers.sampling import sample_ids, split_completions
from curator.trainers.tensors import encode_prompts


def generated_tokens(tokenizer, gen: torch.Tensor) -> int:
    return sum(c.length + (c.finish_reason == "stop") for c in split_completions(tokenizer, gen))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(LAB_MODEL))
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    tok = AutoTokenizer.from_pretrained(args.model)
    prompts = [p.prompt for p in splits(LabConfig())["train"][: args.prompts] for _ in range(args.n)]
    ids, mask = encode_prompts(tok, prompts)

    def ours(seed):
        g = torch.Generator().manual_seed(seed)
        return sample_ids(model, ids, mask, args.max_new_tokens, 1.0, tok.eos_token_id, tok.pad_token_id, g)

    def hf_generate(seed):
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                                 top_p=1.0, max_new_tokens=args.max_new_tokens, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id)
        return out[:, ids.shape[1]:]

    sides = {"generate": hf_generate, "curator hf": ours}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for fn in sides.values():
        fn(0)
    for r in range(args.repeats):
        for name, fn in sides.items():
            t = time.perf_counter()
            gen = fn(r + 1)
            dt = time.perf_counter() - t
            rates[name].append(generated_tokens(tok, gen) / dt)
    for name, rs in rates.items():
        print(f"{name:>11}: {max(rs):8.0f} tokens/s  (median {statistics.median(rs):8.0f}; "
              f"{len(prompts)} sequences, best of {args.repeats})")
    best = max(rates["curator hf"]) / max(rates["generate"])
    median = statistics.median(rates["curator hf"]) / statistics.median(rates["generate"])
    print(f"ratio curator hf / generate: {best:.2f}x  (medians: {median:.2f}x)")


if __name__ == "__main__":
    main()
