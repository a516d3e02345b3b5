"""A process pool with a hard wall-clock limit per item.

`concurrent.futures` cannot stop one stuck task: sympy can sit in a single C
call for minutes holding the GIL, where no signal handler runs. Here each
worker has its own Pipe and at most one item in flight; the parent waits on
all pipes with `multiprocessing.connection.wait` up to the nearest deadline.
A worker past its deadline is SIGKILLed and its item reported as a timeout;
a worker that dies (segfault, OOM kill) gives its item an error. Either way a
replacement is started at once and the remaining items go on.

Workers come from the "forkserver" start method: the server is a clean
single-threaded process (safe from a parent that runs threads, e.g. torch)
that has preloaded math-verify, so a replacement is a fork, not a fresh
interpreter. A new worker says "ready" before it gets an item, so its start-up
is never charged to an item's deadline (see preload.py for why start-up stays
in the milliseconds even under a main script that imports torch).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from curator.verify.outcome import Status, preview
from curator.verify.worker import READY, WORKER_NAME, Failure

log = logging.getLogger("curator.verify")

Job = tuple[str, tuple]  # (kind, args), see worker.py
STARTUP_LIMIT_S = 120.0  # a worker that has not said "ready" by then is killed
MAX_SEND_ATTEMPTS = 2  # an item whose send breaks the pipe twice is an error, not retried forever


@dataclass
class _Slot:
    """One worker process, its end of the pipe, and the item it is working on (if any)."""

    process: multiprocessing.process.BaseProcess
    conn: Connection
    started: float  # time.monotonic() at start
    ready: bool = False
    index: int | None = None  # position of the job in the current `run`
    seq: int = 0  # message number of that job, echoed back by the worker
    deadline: float = 0.0


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _describe(job: Job) -> str:
    """A log-sized view of a job: its kind and the start of its first argument."""
    kind, args = job
    return f"{kind} {preview(args[0]) if args and isinstance(args[0], str) else '?'}"


class WorkerPool:
    """`size` worker processes running `target(conn)`; `run` maps jobs to results under a deadline each."""

    def __init__(self, size: int, target: Callable, preload: Sequence[str] = ()) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one worker, got {size}")
        self._ctx = multiprocessing.get_context("forkserver")
        if preload:
            # Takes effect when the forkserver starts (the first pool in this process).
            # "__main__" stays first, as in multiprocessing's own default list.
            self._ctx.set_forkserver_preload(["__main__", *preload])
        self._target = target
        self._seq = 0
        self._failed_starts = 0  # consecutive workers that died before saying "ready"
        self.replaced = 0  # workers killed or found dead and started again, over the pool's life
        self.startup_s: deque[float] = deque(maxlen=64)  # start-to-ready seconds of recent workers
        self._slots: list[_Slot] = []
        self._slots = [self._start() for _ in range(size)]

    # -- worker lifecycle -------------------------------------------------

    def _start(self) -> _Slot:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=self._target, args=(child_end,), daemon=True,
                                    name=WORKER_NAME)
        started = time.monotonic()
        process.start()
        child_end.close()  # only the worker holds it now, so its death reads as EOF here
        return _Slot(process, parent_end, started)

    def _replace(self, slot: _Slot) -> None:
        """Kill (if needed) and reap `slot`'s worker, then put a fresh one in its place."""
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        slot.conn.close()
        fresh = self._start()
        slot.process, slot.conn, slot.started = fresh.process, fresh.conn, fresh.started
        slot.ready, slot.index = False, None
        self.replaced += 1

    def live_workers(self) -> int:
        """How many worker processes are alive right now."""
        return sum(s.process.is_alive() for s in self._slots)

    def pids(self) -> list[int | None]:
        """Process ids of the current workers (for diagnostics and tests)."""
        return [s.process.pid for s in self._slots]

    def close(self) -> None:
        """Ask every worker to stop, kill those that do not within a second. Safe to call twice."""
        for slot in self._slots:
            try:
                slot.conn.send(None)
            except OSError:
                pass  # already dead
        for slot in self._slots:
            slot.process.join(timeout=1.0)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
        self._slots = []

    @property
    def closed(self) -> bool:
        return not self._slots

    # -- running jobs -----------------------------------------------------

    def run(self, jobs: Sequence[Job], timeout: float) -> list:
        """Each job's result, in order: what the worker sent, or a `Failure` (timeout, dead worker)."""
        if self.closed:
            raise RuntimeError("this verifier is closed; create a new one")
        results: list = [None] * len(jobs)
        todo = deque(range(len(jobs)))
        sends = [0] * len(jobs)
        finished = False
        try:
            while todo or any(s.index is not None for s in self._slots):
                for slot in self._slots:
                    if slot.ready and slot.index is None and todo:
                        self._dispatch(slot, todo, jobs, sends, timeout, results)
                self._collect(jobs, timeout, results)
            finished = True
        finally:
            if not finished:  # interrupted (^C) or failed: in-flight replies would be stale next time
                for slot in self._slots:
                    if slot.index is not None:
                        self._replace(slot)
        return results

    def _dispatch(self, slot: _Slot, todo: deque, jobs: Sequence[Job], sends: list,
                  timeout: float, results: list) -> None:
        """Send the next job to an idle ready worker; if the pipe is broken, replace the worker and requeue."""
        index = todo.popleft()
        kind, args = jobs[index]
        self._seq += 1
        sends[index] += 1
        try:
            # One pickle of the args, written straight to the pipe: a 5 MB
            # completion is encoded once, never joined into a second buffer.
            slot.conn.send((self._seq, kind, args))
        except OSError as e:
            reason = _exit_reason(slot.process.exitcode) if not slot.process.is_alive() else (e.strerror or str(e))
            log.warning("could not send item %d to verify worker %s (%s); replacing it", index, slot.process.pid, reason)
            self._replace(slot)
            if sends[index] >= MAX_SEND_ATTEMPTS:
                results[index] = Failure(Status.ERROR, f"could not hand the item to a worker ({reason})")
            else:
                todo.appendleft(index)
            return
        slot.index, slot.seq, slot.deadline = index, self._seq, time.monotonic() + timeout

    def _collect(self, jobs: Sequence[Job], timeout: float, results: list) -> None:
        """Wait until the nearest deadline for replies and greetings; time out workers past due."""
        busy = [s for s in self._slots if s.index is not None]
        starting = [s for s in self._slots if not s.ready]
        if not busy and not starting:
            return
        due = [s.deadline for s in busy] + [s.started + STARTUP_LIMIT_S for s in starting]
        ready = set(wait([s.conn for s in busy + starting], timeout=max(0.0, min(due) - time.monotonic())))
        now = time.monotonic()
        for slot in starting:
            if slot.conn in ready:
                self._greet(slot)
            elif now >= slot.started + STARTUP_LIMIT_S:
                self._failed_start(slot, f"not ready after {STARTUP_LIMIT_S:g}s")
        for slot in busy:
            if slot.conn in ready:
                self._receive(slot, jobs, results)
            elif now >= slot.deadline:
                index = slot.index
                log.info("verify item %d passed its %gs limit; killing worker %s: %r", index, timeout,
                         slot.process.pid, _describe(jobs[index]))
                results[index] = Failure(Status.TIMEOUT, f"no verdict within {timeout:g}s; worker killed")
                self._replace(slot)

    def _greet(self, slot: _Slot) -> None:
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):
            slot.process.join(timeout=1.0)
            self._failed_start(slot, _exit_reason(slot.process.exitcode))
            return
        if message != READY:
            self._failed_start(slot, f"unexpected first message {message!r:.60}")
            return
        slot.ready = True
        self._failed_starts = 0
        self.startup_s.append(time.monotonic() - slot.started)

    def _failed_start(self, slot: _Slot, reason: str) -> None:
        self._failed_starts += 1
        if self._failed_starts > 3 * len(self._slots):
            raise RuntimeError(
                f"verify workers keep dying while starting ({reason}). Workers re-import the main "
                "script: if it creates a Verifier or calls verify_batch at import time, move that "
                "under `if __name__ == '__main__':`"
            )
        log.warning("verify worker %s failed to start (%s); starting another", slot.process.pid, reason)
        self._replace(slot)

    def _receive(self, slot: _Slot, jobs: Sequence[Job], results: list) -> None:
        index = slot.index
        try:
            seq, result = slot.conn.recv()
        except (EOFError, OSError):
            slot.process.join(timeout=1.0)
            reason = _exit_reason(slot.process.exitcode)
            log.warning("verify worker %s died on item %d (%s); replacing it: %r", slot.process.pid, index, reason,
                        _describe(jobs[index]))
            results[index] = Failure(Status.ERROR, f"worker died ({reason})")
            self._replace(slot)
            return
        if seq != slot.seq:  # cannot happen with one message in flight; never trust a mismatched reply
            results[index] = Failure(Status.ERROR, "worker replied out of turn")
            self._replace(slot)
            return
        results[index] = result
        slot.index = None
