"""Throughput of `Verifier.verify_batch` against a plain serial math-verify loop, and worker replacement cost.

    .venv/bin/python benchmarks/verify_throughput.py [--workers 2] [--repeats 3] [--import-torch]

Items: the 500 MATH-500 reference solutions against their own answers (read
from ../shared/data beside the repository). The serial baseline is what a
caller would write without curator: `math_verify.parse` on the gold (wrapped
in `\\boxed{}`, as the workers do) and on the solution, then
`math_verify.verify`, one item after the other in this process, with
math-verify's default signal timeouts. Each pool repetition uses a fresh
`Verifier` (started and warmed before the clock starts), so its per-worker
gold cache starts empty as the serial loop's does.

Replacement cost: with one worker and a 0.5 s limit, a batch of
[`\\boxed{9^{9^{9^9}}}`, trivial item] times out the first item, kills the
worker, starts another and scores the second item on it. Cost = batch time -
limit - the trivial item's own time on a warm worker.

`--import-torch` imports torch at the top of this script, as a training script
would: multiprocessing re-runs the main script in each child unless skipped.
"""

from __future__ import annotations

import sys

if "--import-torch" in sys.argv:
    import torch  # noqa: F401  (on purpose, at the top of the main script: see the docstring)

import argparse
import json
import statistics
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TOWER = "\\boxed{9^{9^{9^9}}}"


def load_math500() -> tuple[list[str], list[str]]:
    path = DATA / "math500.jsonl"
    if not path.exists():
        sys.exit(f"{path} is absent: the benchmark reads MATH-500 from ../shared/data beside the repository")
    rows = [json.loads(line) for line in path.open()]
    return [r["solution"] for r in rows], [r["answer"] for r in rows]


def serial(solutions: list[str], answers: list[str]) -> tuple[float, int]:
    """Seconds for the plain in-process loop, and how many items it found correct."""
    from math_verify import parse, verify

    parse("\\boxed{1}")  # import and first-call setup outside the clock
    t0 = time.perf_counter()
    correct = 0
    for solution, answer in zip(solutions, answers):
        gold = parse(answer if "\\boxed" in answer else f"\\boxed{{{answer}}}")
        correct += bool(verify(gold, parse(solution)))
    return time.perf_counter() - t0, correct


def pooled(solutions: list[str], answers: list[str], workers: int) -> tuple[float, int, float]:
    """Seconds for one `verify_batch` on a fresh, warmed pool; correct count; start-up seconds."""
    from curator.verify import Verifier

    t0 = time.perf_counter()
    with Verifier(workers=workers, timeout=5.0) as v:
        v.verify_batch(["1"] * workers, ["1"] * workers)  # all workers up
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        outcomes = v.verify_batch(solutions, answers)
        elapsed = time.perf_counter() - t1
    return elapsed, sum(o.status == "correct" for o in outcomes), startup


def replacement_ms(rounds: int = 10) -> list[float]:
    """Milliseconds a timeout adds beyond the limit itself: kill, fork, ready, next item."""
    from curator.verify import Verifier

    limit = 0.5
    with Verifier(workers=1, timeout=limit) as v:
        v.verify_batch(["1"], ["1"])
        trivial = []
        for _ in range(20):
            t0 = time.perf_counter()
            v.verify_batch(["\\boxed{1}"], ["1"])
            trivial.append(time.perf_counter() - t0)
        base = statistics.median(trivial)
        costs = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            first, second = v.verify_batch([TOWER, "\\boxed{1}"], ["1024", "1"])
            assert (first.status, second.status) == ("timeout", "correct"), (first, second)
            costs.append((time.perf_counter() - t0 - limit - base) * 1000)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--import-torch", action="store_true", help="import torch in the main script (see above)")
    args = parser.parse_args()

    solutions, answers = load_math500()
    n = len(solutions)
    serial_runs = [serial(solutions, answers) for _ in range(args.repeats)]
    pool_runs = [pooled(solutions, answers, args.workers) for _ in range(args.repeats)]
    s_best = min(t for t, _ in serial_runs)
    p_best = min(t for t, _, _ in pool_runs)

    print(f"{n} MATH-500 reference solutions vs answers; {args.repeats} runs each, best shown")
    print(f"serial math_verify loop   : {n / s_best:7.1f} items/s  ({s_best:.2f} s, "
          f"{serial_runs[0][1]} correct; runs {', '.join(f'{t:.2f}' for t, _ in serial_runs)} s)")
    print(f"Verifier, {args.workers} workers        : {n / p_best:7.1f} items/s  ({p_best:.2f} s, "
          f"{pool_runs[0][1]} correct; runs {', '.join(f'{t:.2f}' for t, _, _ in pool_runs)} s)")
    print(f"ratio pool / serial       : {s_best / p_best:7.2f}x")
    print(f"pool start-up (cold forkserver, then warm): "
          f"{', '.join(f'{s:.2f}' for _, _, s in pool_runs)} s")
    costs = replacement_ms()
    print(f"worker replacement after a timeout: median {statistics.median(costs):.1f} ms "
          f"(min {min(costs):.1f}, max {max(costs):.1f}, {len(costs)} rounds)"
          + (" [torch imported in main]" if args.import_torch else ""))


if __name__ == "__main__":
    main()
