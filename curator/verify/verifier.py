"""`Verifier`: score completions against gold answers in worker processes, with a hard time limit each.

The module-level `verify_batch` and `check_golds` share one default
`Verifier`, created on first use and closed at interpreter exit, so a training
loop that calls them every step never pays for new processes.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence

from curator.verify.outcome import GoldCheck, Outcome
from curator.verify.pool import WorkerPool
from curator.verify.worker import Failure, serve

PRELOAD = ("curator.verify.preload",)


def default_workers() -> int:
    """Two workers, or one on a single-core machine: verification should not starve the trainer."""
    return max(1, min(2, os.cpu_count() or 1))


def _require_strings(name: str, values: Sequence) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}] is {type(v).__name__}, not str: pass '' for a missing value")


class Verifier:
    """A pool of verification workers. Use as a context manager, or call `close()`.

    >>> with Verifier(workers=1) as v:                                  # doctest: +SKIP
    ...     [o.status for o in v.verify_batch([r"so \\boxed{1024}"], ["2^{10}"])]
    ['correct']
    """

    def __init__(self, workers: int | None = None, timeout: float = 5.0) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds per item, got {timeout}")
        self.timeout = timeout
        self.workers = workers if workers is not None else default_workers()
        self._pool = WorkerPool(self.workers, serve, preload=PRELOAD)
        self._lock = threading.Lock()  # one batch at a time: a worker holds one item
        self._owner_pid = os.getpid()

    def verify_batch(self, completions: Sequence[str], golds: Sequence[str],
                     timeout: float | None = None) -> list[Outcome]:
        """One `Outcome` per completion, judged against the gold answer at the same position."""
        if len(completions) != len(golds):
            raise ValueError(f"{len(completions)} completions but {len(golds)} gold answers: they pair up by position")
        _require_strings("completions", completions)
        _require_strings("golds", golds)
        jobs = [("score", (c, g)) for c, g in zip(completions, golds)]
        return [r if isinstance(r, Outcome) else Outcome(r.status, detail=r.detail)
                for r in self._run(jobs, timeout)]

    def check_golds(self, golds: Sequence[str], timeout: float | None = None) -> list[GoldCheck]:
        """One `GoldCheck` per gold answer string: does math-verify read it as a gold answer?"""
        _require_strings("golds", golds)
        jobs = [("gold", (g,)) for g in golds]
        return [GoldCheck(ok=False, detail=f"{r.status}: {r.detail}") if isinstance(r, Failure) else r
                for r in self._run(jobs, timeout)]

    def _run(self, jobs: list, timeout: float | None) -> list:
        limit = self.timeout if timeout is None else timeout
        if limit <= 0:
            raise ValueError(f"timeout must be positive seconds per item, got {limit}")
        with self._lock:
            return self._pool.run(jobs, limit)

    def live_workers(self) -> int:
        """How many worker processes are alive (equals `workers` between batches)."""
        return self._pool.live_workers()

    def pids(self) -> list[int | None]:
        """Process ids of the current workers."""
        return self._pool.pids()

    @property
    def replaced(self) -> int:
        """Workers killed (timeout) or found dead and replaced so far."""
        return self._pool.replaced

    @property
    def closed(self) -> bool:
        return self._pool.closed

    def close(self) -> None:
        """Stop the workers. A verifier inherited through `fork` leaves its parent's workers alone."""
        if os.getpid() != self._owner_pid:
            return
        # At exit a daemon thread may still be inside a batch: wait for it a little, then close anyway.
        locked = self._lock.acquire(timeout=5.0)
        try:
            self._pool.close()
        finally:
            if locked:
                self._lock.release()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default: Verifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> Verifier:
    """The shared `Verifier`, started on first use (again after a fork) and closed at exit."""
    global _default
    with _default_lock:
        if _default is None or _default.closed or _default._owner_pid != os.getpid():
            _default = Verifier()
            atexit.register(_default.close)
        return _default


def verify_batch(completions: Sequence[str], golds: Sequence[str], timeout: float = 5.0) -> list[Outcome]:
    """Score completions against gold answers with math-verify, at most `timeout` seconds each.

    >>> [o.status for o in verify_batch([r"\\boxed{1024}", "no idea"], ["2^{10}", "3"])]  # doctest: +SKIP
    ['correct', 'no_answer']
    """
    return default_verifier().verify_batch(completions, golds, timeout=timeout)


def check_golds(golds: Sequence[str], timeout: float = 5.0) -> list[GoldCheck]:
    """Whether each gold answer string parses as a gold answer, using the shared `Verifier`."""
    return default_verifier().check_golds(golds, timeout=timeout)
