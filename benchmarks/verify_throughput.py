"""Throughput of `Verifier.verify_batch` against a plain serial math-verify loop, and worker replacement cost.

    .venv/bin/python benchmarks/verify_throughput.py [--workers 2] [--passes 4] [--import-torch]

Items: the 500 MATH-500 reference solutions against their own answers (read
from ../shared/data beside the repository). The serial baseline is what a
caller would write without curator: `math_verify.parse` on the gold (wrapped
in `\\boxed{}`, as the workers do) and on the solution, then
`math_verify.verify`, one item after the other in this process, with
math-verify's default signal timeouts. The pool is started (and each worker
has answered once) before the clock starts.

Both sides get several passes over the same items. The first pass is cold:
sympy's cache and the ANTLR parser's prediction tables fill up as they go,
so later passes run faster on either side. In the pool's later passes the
golds also come from the per-worker gold cache (as the G rollouts of one
prompt do in training); the serial loop parses each gold every time.

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


def serial(solutions: list[str], answers: list[str], passes: int) -> tuple[list[float], int]:
    """Seconds per pass of the plain in-process loop, and how many items the last pass found correct."""
    from math_verify import parse, verify

    parse("\\boxed{1}")  # import and first-call setup outside the clock
    times = []
    for _ in range(passes):
        t0 = time.perf_counter()
        correct = 0
        for solution, answer in zip(solutions, answers):
            gold = parse(answer if "\\boxed" in answer else f"\\boxed{{{answer}}}")
            correct += bool(verify(gold, parse(solution)))
        times.append(time.perf_counter() - t0)
    return times, correct


def pooled(solutions: list[str], answers: list[str], workers: int, passes: int) -> tuple[list[float], int, float]:
    """Seconds per `verify_batch` pass on one pool, correct count of the last pass, start-up seconds."""
    from curator.verify import Verifier

    t0 = time.perf_counter()
    with Verifier(workers=workers, timeout=5.0) as v:
        v.verify_batch(["1"] * workers, ["1"] * workers)  # all workers up
        startup = time.perf_counter() - t0
        times = []
        for _ in range(passes):
            t1 = time.perf_counter()
            outcomes = v.verify_batch(solutions, answers)
            times.append(time.perf_counter() - t1)
    return times, sum(o.status == "correct" for o in outcomes), startup


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
    parser.add_argument("--passes", type=int, default=4, help="passes over the 500 items; the first is cold")
    parser.add_argument("--import-torch", action="store_true", help="import torch in the main script (see above)")
    args = parser.parse_args()

    solutions, answers = load_math500()
    n = len(solutions)
    s_times, s_correct = serial(solutions, answers, args.passes)
    p_times, p_correct, startup = pooled(solutions, answers, args.workers, args.passes)
    s_cold, s_warm = s_times[0], min(s_times[1:])
    p_cold, p_warm = p_times[0], min(p_times[1:])

    print(f"{n} MATH-500 reference solutions vs answers, {args.passes} passes "
          f"(cold = first pass, warm = best later pass)")
    print(f"  serial math_verify loop : cold {n / s_cold:6.1f} items/s, warm {n / s_warm:6.1f} items/s "
          f"({s_correct} correct; passes {', '.join(f'{t:.2f}' for t in s_times)} s)")
    print(f"  Verifier, {args.workers} worker(s)   : cold {n / p_cold:6.1f} items/s, warm {n / p_warm:6.1f} items/s "
          f"({p_correct} correct; passes {', '.join(f'{t:.2f}' for t in p_times)} s)")
    print(f"  ratio Verifier / serial : cold {s_cold / p_cold:.2f}x, warm {s_warm / p_warm:.2f}x")
    print(f"  pool start-up until every worker answered once: {startup:.2f} s")
    costs = replacement_ms()
    print(f"  worker replacement after a timeout: median {statistics.median(costs):.1f} ms "
          f"(min {min(costs):.1f}, max {max(costs):.1f}, {len(costs)} rounds)"
          + (" [torch imported by the main script]" if args.import_torch else ""))


if __name__ == "__main__":
    main()
