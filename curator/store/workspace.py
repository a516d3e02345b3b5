"""The workspace: one DuckDB file per project, holding every table curator writes.

`Workspace` is the only place that opens the file. It applies pending
migrations, writes rows in Arrow/DataFrame batches (never row by row), and
turns DuckDB's file-lock conflict into a one-line message naming the process
that holds the file. Copies go through `snapshot`, which checkpoints first so
that the copy holds everything committed.

While a process holds the workspace for writing it leaves `<file>.owner.json`
beside it (PID, command, start time) so that a second process can say who.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pandas as pd
import pyarrow as pa

from curator.errors import CuratorError, WorkspaceLocked
from curator.redact import redact
from curator.store.migrations import migrate

DEFAULT_PATH = "curator.duckdb"

_LOCK_PID = re.compile(r"\(PID (\d+)\)")


def utcnow() -> datetime:
    """Naive UTC timestamp, the form every TIMESTAMP column holds."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Rows(list):
    """Materialized query rows with the DB-API fetch methods."""

    def fetchall(self) -> list[tuple]:
        return list(self)

    def fetchone(self) -> tuple | None:
        return self[0] if self else None


class Workspace:
    """An open workspace file. Use as a context manager, or call `close()`."""

    def __init__(self, path: str | os.PathLike = DEFAULT_PATH, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise CuratorError(
                f"no workspace at {self.path}; run `curator ingest` first or pass --workspace"
            )
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise WorkspaceLocked(self._locked_message(str(e))) from None
            raise CuratorError(f"cannot open workspace {self.path}: {e}") from None
        self._owner_file: Path | None = None
        if not read_only:
            migrate(self.con, str(self.path))
            self._claim()

    # -- ownership ------------------------------------------------------------

    @property
    def owner_path(self) -> Path:
        return self.path.with_name(self.path.name + ".owner.json")

    def _claim(self) -> None:
        info = {
            "pid": os.getpid(),
            "command": redact(" ".join([Path(sys.argv[0]).name, *sys.argv[1:]])),
            "since": utcnow().isoformat(timespec="seconds") + "Z",
        }
        tmp = self.owner_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(self.owner_path)
        self._owner_file = self.owner_path

    def _locked_message(self, duckdb_message: str) -> str:
        who = None
        try:
            info = json.loads(self.owner_path.read_text())
            if _pid_alive(int(info["pid"])):
                who = f"PID {info['pid']} (`{info['command']}`, since {info['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if who is None:
            m = _LOCK_PID.search(duckdb_message)
            who = f"PID {m.group(1)}" if m else "another process"
        return (
            f"workspace {self.path} is in use by {who}; wait for it to finish or stop it, "
            f"or pass --workspace to use another file"
        )

    # -- reading and writing --------------------------------------------------

    def sql(self, query: str, params: list | None = None) -> "Rows":
        """Run a query and materialize its rows (`.fetchall()`, `.fetchone()`).

        The result is read to the end at once: DuckDB refuses other work on a
        connection whose last result is still open.
        """
        return Rows(self.con.execute(query, params or []).fetchall())

    def execute(self, statement: str, params: list | None = None) -> None:
        """Run a statement (DELETE, UPDATE...) and finish its result, so the connection is free."""
        self.con.execute(statement, params or []).fetchall()

    def table(self, query: str, params: list | None = None) -> pa.Table:
        """Run a query and return its result as an Arrow table."""
        return self.con.execute(query, params or []).fetch_arrow_table()

    def df(self, query: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(query, params or []).df()

    def write(self, table: str, rows: pa.Table | pd.DataFrame, on_conflict: str = "error") -> int:
        """Insert a batch of rows by column name; return how many were given.

        on_conflict: "error" (a duplicate key raises), "ignore" (keep the stored row),
        or "replace" (the new row wins).
        """
        if self.read_only:
            raise CuratorError(f"workspace {self.path} was opened read-only")
        n = rows.num_rows if isinstance(rows, pa.Table) else len(rows)
        if n == 0:
            return 0
        verb = {"error": "INSERT", "ignore": "INSERT OR IGNORE", "replace": "INSERT OR REPLACE"}[
            on_conflict
        ]
        view = "_curator_incoming"
        self.con.register(view, rows)
        try:
            self.con.execute(f"{verb} INTO {table} BY NAME SELECT * FROM {view}").fetchall()
        finally:
            with contextlib.suppress(duckdb.Error):  # never mask the insert's own error
                self.con.unregister(view)
        return n

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Workspace"]:
        """All writes inside commit together or not at all."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def counts(self) -> dict[str, int]:
        """Row count of every table, for `curator info`."""
        names = [
            r[0]
            for r in self.con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' ORDER BY table_name"
            ).fetchall()
        ]
        return {t: self.sql(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in names}

    def schema_version(self) -> int:
        from curator.store.migrations import current_version

        return current_version(self.con)

    # -- copies ---------------------------------------------------------------

    def checkpoint(self) -> None:
        """Flush the write-ahead log into the file, so that the file alone is complete."""
        if not self.read_only:
            self.execute("CHECKPOINT")

    def snapshot(self, dest: str | os.PathLike) -> Path:
        """Copy the workspace to `dest` after a checkpoint; return the copy's path."""
        self.checkpoint()
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.copyfile(self.path, tmp)
        tmp.replace(dest)
        return dest

    # -- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        if getattr(self, "con", None) is None:
            return
        self.con.close()
        self.con = None
        if self._owner_file is not None:
            with contextlib.suppress(OSError):
                info = json.loads(self._owner_file.read_text())
                if info.get("pid") == os.getpid():
                    self._owner_file.unlink()
            self._owner_file = None

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
