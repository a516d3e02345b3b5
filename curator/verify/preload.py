"""Imported once by the multiprocessing forkserver, never by the parent.

It imports sympy and math-verify and runs one parse and verify, so every
worker forked from the server starts with warm modules and caches.

It also spares verification workers the re-run of the parent's main script.
Every forkserver child runs it again as `__mp_main__` before its target
starts, so that objects defined in `__main__` can be unpickled; the
forkserver was meant to do this once itself, but before Python 3.13.8 it
never does (CPython gh-126631). A training script that imports torch at the
top thus makes each replacement worker take ~1.5 s instead of ~10 ms. Our
workers only ever receive strings, so for processes named `WORKER_NAME`, and
only in this forkserver, the two `multiprocessing.spawn` fix-up hooks return
at once. Other children of the same forkserver are untouched; if a future
Python renames the hooks, nothing is patched and workers are merely slower.
"""

from multiprocessing import process, spawn

from curator.verify import scoring
from curator.verify.worker import WORKER_NAME


def _unless_verify_worker(fixup):
    def fixup_main(main):
        if process.current_process().name != WORKER_NAME:
            fixup(main)

    return fixup_main


for _hook in ("_fixup_main_from_path", "_fixup_main_from_name"):
    if callable(getattr(spawn, _hook, None)):
        setattr(spawn, _hook, _unless_verify_worker(getattr(spawn, _hook)))

scoring.warm_up()
