"""Build the lab's tiny model: tokenizer, Llama-style config, supervised warm start.

    bootstrap(LabConfig(), "data/lab/model") -> BootstrapSummary

The result is a standard checkpoint folder (`config.json`, `model.safetensors`,
tokenizer files) that `AutoModelForCausalLM` / `AutoTokenizer.from_pretrained`
load, plus `lab.json` (the config fingerprint, timings, losses). It is written
to a temporary folder and renamed into place, `lab.json` last, so a killed
bootstrap never leaves a checkpoint that looks complete. A folder whose
`lab.json` carries the same fingerprint is reused as is.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from curator.lab.config import LabConfig
from curator.lab.problems import generate

MARKER = "lab.json"


@dataclass
class BootstrapSummary:
    path: str
    reused: bool
    seconds: float
    parameters: int
    final_loss: float | None
    size_bytes: int


def is_complete(path: Path, config: LabConfig) -> bool:
    try:
        info = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("fingerprint") == config.fingerprint()


def pool_prompts(config: LabConfig) -> set[str]:
    from curator.lab.data import splits

    return {p.prompt for split in splits(config).values() for p in split}


def build_model(config: LabConfig, tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    mc = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.ffn_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(config.sft_seed)
    return LlamaForCausalLM(mc)


def bootstrap(config: LabConfig, path: str | os.PathLike, force: bool = False,
              on_step=lambda step, loss: None) -> BootstrapSummary:
    import torch
    from transformers.utils import logging as hf_logging

    from curator.lab.tokenizer import build_tokenizer
    from curator.trainers.sft import SFTConfig, supervised_warm_start

    path = Path(path)
    if not force and is_complete(path, config):
        info = json.loads((path / MARKER).read_text())
        return BootstrapSummary(str(path), True, 0.0, info["parameters"], info["final_loss"],
                                _size(path))
    torch.set_num_threads(config.threads)
    hf_logging.disable_progress_bar()
    t0 = time.time()
    tokenizer = build_tokenizer()
    model = build_model(config, tokenizer)
    exclude = pool_prompts(config)

    def batch(step: int) -> list[tuple[str, str]]:
        problems = generate(config.buckets, config.sft_batch, seed=1_000_003 * (config.sft_seed + 1) + step,
                            exclude=exclude)
        return [(p.prompt, p.solution) for p in problems]

    losses = supervised_warm_start(
        model, tokenizer, batch,
        SFTConfig(steps=config.sft_steps, lr=config.sft_lr, warmup=config.sft_warmup, seed=config.sft_seed),
        on_step,
    )
    seconds = time.time() - t0
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    info = {
        "fingerprint": config.fingerprint(),
        "parameters": n_params,
        "sft_seconds": round(seconds, 1),
        "final_loss": losses[-1] if losses else None,
        "loss_every_50": losses[::50],
        "torch": torch.__version__,
    }
    (tmp / MARKER).write_text(json.dumps(info, indent=1))  # written last: marks completeness
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return BootstrapSummary(str(path), False, seconds, n_params, info["final_loss"], _size(path))


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())
