"""The workspace store: one DuckDB file, its migrations, batched writes."""

from curator.store.workspace import DEFAULT_PATH, Workspace, utcnow

__all__ = ["DEFAULT_PATH", "Workspace", "utcnow"]
