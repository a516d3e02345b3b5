"""Rollouts from the offline vLLM engine held in this process (an optional extra).

The GPU path:

    pip install 'curator-rlvr[vllm]'        # vLLM pins its own torch and transformers

    from curator.trainers.vllm_backend import VLLMBackend
    backend = VLLMBackend("Qwen/Qwen2.5-Math-1.5B", gpu_memory_utilization=0.5)   # a local path or a Hub id
    backend.generate(prompts, n=8, max_new_tokens=512, temperature=1.0, seed=0)

The constructor builds one `vllm.LLM` (the model is loaded onto the GPU then,
taking `gpu_memory_utilization` of its memory for weights and KV cache; the
rest stays free for a trainer beside it). `generate` makes one
`vllm.SamplingParams` per prompt (`sampling_params_kwargs`: n, max_tokens,
temperature, every other sampling filter disabled, and the prompt's own seed
`derive_seed(seed, position)` so that identical prompts still get different
samples), runs `LLM.generate` once over all prompts, letting vLLM batch them,
and turns its `RequestOutput`s into `Completion`s
(`completions_from_request_output`: samples ordered by their `index`, the
trailing EOS id dropped, `n_tokens` = the number of generated ids).

Because vLLM pins its own torch and transformers, installing it next to
curator can move both. The robust route is a separate environment running
`vllm serve MODEL` and curator's `--backend openai` pointed at it
(trainers/openai_backend.py); this backend is for a machine where one
environment holds both.

Updating the policy during training. Two routes:

- LoRA (implemented): construct with `enable_lora=True` (and `max_lora_rank`
  at least the adapter's rank), save the adapter with PEFT's
  `save_pretrained(path)` and call `backend.set_adapter(path)`. Every call
  makes a new `LoRARequest` with a fresh integer id that is never reused:
  vLLM caches adapters by id, so reusing an id after the adapter's weights
  changed would silently keep sampling the old adapter. `set_adapter(None)`
  goes back to the base model.
- Merged weights (not implemented): push a full state dict into the running
  engine, e.g. `llm.llm_engine.model_executor.driver_worker.model_runner.model
  .load_weights(state_dict.items())` on the V0 engine, or `llm.collective_rpc`
  with a worker-side function on V1. The path through the engine's internals
  changes between vLLM versions, so curator does not rely on it.

Without vLLM installed, constructing `VLLMBackend` raises a `CuratorError`
saying what to install; the helper functions below need no vLLM and are
what the tests exercise.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from pathlib import Path

from curator.errors import CuratorError
from curator.trainers.openai_backend import derive_seed
from curator.trainers.rollout import Completion

INSTALL_HINT = ("pip install 'curator-rlvr[vllm]' (vLLM pins its own torch and transformers: a separate "
                "environment running `vllm serve MODEL` with --backend openai is the robust route)")


def sampling_params_kwargs(n: int, max_new_tokens: int, temperature: float, seed: int | None,
                           stop: str | list[str] | None = None) -> dict:
    """Keyword arguments for `vllm.SamplingParams`: plain sampling at `temperature` (0 is greedy).

    top_p=1.0, min_p=0.0 and top_k=-1 switch those filters off; -1 means "all tokens" in every vLLM
    release (current ones also take 0 for it, older ones reject 0)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    kwargs = {"n": n, "max_tokens": max_new_tokens, "temperature": float(temperature), "top_p": 1.0,
              "top_k": -1, "min_p": 0.0, "seed": seed}
    if stop:
        kwargs["stop"] = [stop] if isinstance(stop, str) else list(stop)
    return kwargs


def completions_from_request_output(outputs: Iterable, eos_token_id: int | None = None,
                                    n: int | None = None) -> list[list[Completion]]:
    """vLLM `RequestOutput`s (one per prompt, in prompt order) -> per prompt, per sample `Completion`s.

    Each `RequestOutput.outputs` holds `CompletionOutput`s with `.index`, `.text`, `.token_ids` and
    `.finish_reason` ("stop", "length", or None while unfinished). Samples are ordered by `.index`;
    a trailing `eos_token_id` is dropped from the ids (vLLM keeps the EOS token it sampled; the text
    never shows it); finish_reason "length" stays "length", anything else becomes "stop". With `n`,
    each prompt must have exactly the samples 0..n-1."""
    result: list[list[Completion]] = []
    for p, request in enumerate(outputs):
        samples = sorted(request.outputs, key=lambda o: o.index)
        indices = [o.index for o in samples]
        wanted = list(range(n if n is not None else len(samples)))
        if indices != wanted:
            raise CuratorError(f"vLLM returned samples {indices} for prompt {p}, expected {wanted}")
        row = []
        for o in samples:
            ids = tuple(int(t) for t in o.token_ids)
            if ids and eos_token_id is not None and ids[-1] == eos_token_id:
                ids = ids[:-1]
            reason = "length" if o.finish_reason == "length" else "stop"
            row.append(Completion(o.text, ids, reason, len(ids)))
        result.append(row)
    return result


class AdapterIds:
    """Fresh (name, int id) pairs for vLLM `LoRARequest`s: ids start at 1 (0 means "no adapter") and are
    never reused, so a changed adapter is never served from vLLM's cache under an old id."""

    def __init__(self, prefix: str = "curator-lora"):
        self.prefix = prefix
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def take(self, path: str | Path) -> tuple[str, int]:
        with self._lock:
            i = next(self._counter)
        return f"{self.prefix}-{i}-{Path(path).name}", i


class VLLMBackend:
    """Sampling with `vllm.LLM` in this process (see the module docstring)."""

    name = "vllm"

    def __init__(self, model: str, *, tokenizer: str | None = None, gpu_memory_utilization: float = 0.5,
                 dtype: str = "auto", seed: int = 0, max_model_len: int | None = None,
                 enable_lora: bool = False, max_lora_rank: int = 16, stop: str | list[str] | None = None,
                 **llm_kwargs):
        try:
            import vllm
        except ImportError as e:
            detail = "" if getattr(e, "name", None) == "vllm" else f" (importing it failed: {e})"
            raise CuratorError(f"the vllm backend needs vLLM{detail}: {INSTALL_HINT}") from None
        kwargs = {"model": str(model), "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype,
                  "seed": seed}
        if tokenizer is not None:
            kwargs["tokenizer"] = str(tokenizer)
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if enable_lora:
            kwargs |= {"enable_lora": True, "max_lora_rank": max_lora_rank, "max_loras": 1}
        kwargs |= llm_kwargs
        self._vllm = vllm
        self.model = str(model)
        self.enable_lora = enable_lora
        self.stop = stop
        self.llm = vllm.LLM(**kwargs)
        self.eos_token_id = getattr(self.llm.get_tokenizer(), "eos_token_id", None)
        self._adapter_ids = AdapterIds()
        self.adapter = None  # the LoRARequest in use, or None for the base model

    def __repr__(self) -> str:
        return f"VLLMBackend(model={self.model!r}, adapter={getattr(self.adapter, 'lora_name', None)!r})"

    def set_adapter(self, path: str | Path | None) -> None:
        """Sample with the LoRA adapter saved at `path` from now on (a fresh id every call); None: the base model."""
        if path is None:
            self.adapter = None
            return
        if not self.enable_lora:
            raise CuratorError("set_adapter needs a backend built with enable_lora=True")
        from vllm.lora.request import LoRARequest

        name, lora_id = self._adapter_ids.take(path)
        self.adapter = LoRARequest(name, lora_id, str(path))

    def generate(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
                 seed: int | None = None) -> list[list[Completion]]:
        prompts = list(prompts)
        if not prompts:
            return []
        params = [self._vllm.SamplingParams(**sampling_params_kwargs(
            n, max_new_tokens, temperature, None if seed is None else derive_seed(seed, i), self.stop))
            for i in range(len(prompts))]
        outputs = self.llm.generate(prompts, params, use_tqdm=False, lora_request=self.adapter)
        return completions_from_request_output(outputs, eos_token_id=self.eos_token_id, n=n)
