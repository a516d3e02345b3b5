"""Every knob of the arithmetic lab, in one place.

Tuning the lab (which buckets, how big a pool, how long the warm start) means
editing `LabConfig` defaults or passing another `LabConfig`; nothing else holds
a lab constant. The defaults are the ones whose numbers the README records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from curator.lab.problems import Bucket


def default_buckets() -> tuple[Bucket, ...]:
    return (
        Bucket("add 1+1", "a+b", (1, 1)),
        Bucket("add 2+1", "a+b", (2, 1)),
        Bucket("add 2+2", "a+b", (2, 2)),
        Bucket("add 3+3", "a+b", (3, 3)),
        Bucket("add 4+4", "a+b", (4, 4)),
        Bucket("sub 2-2", "a-b", (2, 2)),
        Bucket("sub 3-3", "a-b", (3, 3)),
        Bucket("mul 1*1", "a*b", (1, 1)),
        Bucket("mul 2*1", "a*b", (2, 1)),
        Bucket("mul 2*2", "a*b", (2, 2)),
        Bucket("mul 3*1", "a*b", (3, 1)),
        Bucket("mix a+b*c", "a+b*c", (2, 1, 1)),
        Bucket("mix (a+b)*c", "(a+b)*c", (2, 2, 1)),
        Bucket("mix a*b-c", "a*b-c", (2, 1, 2)),
        Bucket("mix a+b+c", "a+b+c", (2, 2, 2)),
    )


@dataclass(frozen=True)
class LabConfig:
    # data
    buckets: tuple[Bucket, ...] = field(default_factory=default_buckets)
    train_size: int = 384  # the pool that GRPO trains on and curator labels
    eval_size: int = 256  # held-out problems, same buckets
    data_seed: int = 0
    # model: a Llama-style decoder
    hidden_size: int = 96
    layers: int = 3
    heads: int = 4
    ffn_size: int = 384
    max_positions: int = 64
    # supervised warm start on traces (fresh problems every step, none from the pools)
    sft_steps: int = 700
    sft_batch: int = 128
    sft_lr: float = 3e-3
    sft_warmup: int = 30
    sft_seed: int = 0
    threads: int = 1  # one torch thread: faster than two on 2 shared cores

    def fingerprint(self) -> str:
        """Hash of every knob: a cached checkpoint is reused only for the same config."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
