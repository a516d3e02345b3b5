"""Verifiable rewards: math-verify in worker processes, with a hard time limit per item.

    outcome.py   Outcome / GoldCheck / Status: what a verdict looks like; `preview`
    scoring.py   math-verify calls for one item (gold parsing, extraction, comparison)
    worker.py    the loop each worker process runs, and its message format
    preload.py   imported by the forkserver so forked workers start warm
    pool.py      worker processes, one item each, SIGKILL past the deadline
    verifier.py  `Verifier` and the shared default behind `verify_batch` / `check_golds`

Importing this package does not import sympy or math-verify; only workers do.
"""

from curator.verify.outcome import STATUSES, GoldCheck, Outcome, Status, preview
from curator.verify.verifier import Verifier, check_golds, default_verifier, verify_batch

__all__ = [
    "STATUSES", "GoldCheck", "Outcome", "Status", "Verifier",
    "check_golds", "default_verifier", "preview", "verify_batch",
]
