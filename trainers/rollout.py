"""Rollout backends: prompts x n samples -> completions, behind one interface.

    backend.generate(prompts, n=8, max_new_tokens=48, temperature=1.0, seed=0)
        -> list (per prompt) of list (per sample) of Completion

Backends:
- `HFBackend`      any `transformers` causal LM in this process, CPU or GPU (trainers/sampling.py)
- `OpenAIBackend`  any OpenAI-compatible /v1/completions server: vLLM or SGLang serve, a hosted
                   API (trainers/openai_backend.py); the way to probe past one machine
- `VLLMBackend`    the offline vLLM engine in this process, an optional extra (trainers/vllm_backend.py)

The GRPO trainer samples with `HFBackend` on the policy it is training;
`curator probe` and evaluation can use any backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: tuple[int, ...] | None  # generated ids without EOS; None when the backend cannot say
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    n_tokens: int  # generated tokens (EOS excluded); from token_ids, or the server's count

    @property
    def length(self) -> int:
        return self.n_tokens


class RolloutBackend(Protocol):
    name: str

    def generate(
        self,
        prompts: list[str],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int | None = None,
    ) -> list[list[Completion]]: ...


class HFBackend:
    """Sampling from a `transformers` model held in this process."""

    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 512):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def generate(self, prompts, n, max_new_tokens, temperature, seed=None):
        from curator.trainers.sampling import sample

        return sample(self.model, self.tokenizer, prompts, n=n, max_new_tokens=max_new_tokens,
                      temperature=temperature, seed=seed, batch_size=self.batch_size)
