"""Stable example ids.

An example keeps the user's id when they name an id column. Otherwise its id
is a hash of the normalized prompt and answer, so the same problem gets the
same id in every ingest, every file order and every machine.
"""

from __future__ import annotations

import hashlib
import re

_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Whitespace collapsed and stripped: the form prompts and answers are compared in."""
    return _WS.sub(" ", text).strip()


def content_id(prompt: str, answer: str) -> str:
    """16 hex digits of sha256 over the normalized prompt and answer."""
    key = normalize(prompt) + "\x1f" + normalize(answer)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
