"""The report at scale: a synthetic workspace of 50,000 examples and 200 GRPO steps.

Builds the workspace with the test fixture (tests/report_fixtures.py): 3 runs x
200 steps x 256 prompts of G = 8 (153,600 history rows), an initial eval and a
final eval per run (200,000 eval rows), labels and scores from the real label
stage, gradient similarity for every example, every stored rollout's judgment,
and an export. Then renders the report from a read-only workspace and prints
the time and size against the targets (30 s, 5 MB).

    python benchmarks/report_scale.py [--examples 50000] [--steps 200] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

TARGET_SECONDS = 30.0
TARGET_MB = 5.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=50_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompts-per-step", type=int, default=256)
    ap.add_argument("--keep", type=int, default=64, help="rollouts stored per step, correct and incorrect each")
    ap.add_argument("--out", default=None, help="folder for the workspace and report (default: a temp dir)")
    args = ap.parse_args()

    from report_fixtures import build_workspace

    from curator.reports import ReportConfig, build_report
    from curator.store import Workspace

    root = Path(args.out or tempfile.mkdtemp(prefix="report-scale-"))
    ws_path = root / "scale.duckdb"
    if ws_path.exists():
        ws_path.unlink()
    t0 = time.perf_counter()
    build_workspace(ws_path, n_examples=args.examples, n_steps=args.steps, n_runs=args.runs,
                    prompts_per_step=args.prompts_per_step, keep=args.keep)
    built = time.perf_counter() - t0
    with Workspace(ws_path, read_only=True) as ws:
        counts = ws.counts()
    print(f"workspace: {args.examples:,} examples, {args.steps} steps x {args.runs} runs x {args.prompts_per_step} "
          f"prompts; history {counts['history']:,}, evals {counts['evals']:,}, rollouts {counts['rollouts']:,}, "
          f"judgments {counts['judgments']:,} rows (built in {built:.1f}s, not counted)")

    t0 = time.perf_counter()
    with Workspace(ws_path, read_only=True) as ws:
        s = build_report(ws, ReportConfig(out=str(root / "report.html")))
    seconds = time.perf_counter() - t0
    mb = s.bytes / 1e6
    print(f"report: {s.path}")
    print(f"sections: {', '.join(s.sections)}")
    print(f"render time {seconds:.2f}s (target < {TARGET_SECONDS:.0f}s: {seconds / TARGET_SECONDS:.1%} of it)")
    print(f"size {mb:.2f} MB (target < {TARGET_MB:.0f} MB: {mb / TARGET_MB:.1%} of it)")
    ok = seconds < TARGET_SECONDS and mb < TARGET_MB
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
