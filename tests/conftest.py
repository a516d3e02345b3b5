"""Shared fixtures: real workspace files in a temp dir, and the public data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the public test data lives in ../shared/data beside the repo")
    return path


@pytest.fixture
def ws_path(tmp_path: Path) -> Path:
    return tmp_path / "ws.duckdb"


@pytest.fixture
def ws(ws_path: Path):
    from curator.store import Workspace

    with Workspace(ws_path) as w:
        yield w


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Tests never reach the network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    yield


def curator_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env
