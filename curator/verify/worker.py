"""The loop a verification worker process runs, and the messages it exchanges.

Worker to parent, once at start: `READY`. Then parent to worker:
`(seq, kind, args)` with kind "score" (args: completion, gold) or "gold"
(args: gold,), or `None` to stop; worker to parent: `(seq, result)`, where
result is an `Outcome`, a `GoldCheck`, or a `Failure`.
One message in flight per worker, so the parent always knows which item a
worker is stuck on.

This module stays light: math-verify is imported inside `serve`, where the
forkserver preload (`curator.verify.preload`) has already loaded it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from curator.verify.outcome import Status, preview

READY = "ready"
WORKER_NAME = "curator-verify-worker"  # process name; preload.py keys on it


@dataclass(frozen=True)
class Failure:
    """An item the worker could not judge: the pool's own timeout, a dead worker, an unexpected exception."""

    status: Status
    detail: str


def serve(conn) -> None:
    """Answer jobs from `conn` until `None` or end of file. Runs in the worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C goes to the parent, which kills us
    try:
        from curator.verify import scoring
    except ImportError as e:  # say so for every item, rather than dying with "worker died"
        _refuse_all(conn, f"math-verify is not importable in the worker: {preview(str(e), 100)}")
        return
    cache = scoring.GoldCache()
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        seq, kind, args = message
        try:
            if kind == "score":
                result = scoring.score_against(args[0], args[1], cache)
            else:
                result = scoring.check_gold(args[0])
        except Exception as e:  # a bug outside math-verify's own guarded calls: an error status, not a dead worker
            result = Failure(Status.ERROR, f"{type(e).__name__} in the worker: {preview(str(e), 60)}")
        del message, args  # do not hold a 5 MB completion while waiting for the next item
        conn.send((seq, result))


def _refuse_all(conn, detail: str) -> None:
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        conn.send((message[0], Failure(Status.ERROR, detail)))
