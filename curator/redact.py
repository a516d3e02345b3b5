"""Keep secrets out of everything curator prints or stores.

`redact` masks strings that look like Hugging Face tokens or API keys, and any
value given after a flag whose name says it is a secret. Use it on anything
that echoes user input: commands recorded in files, error messages, logs.
"""

from __future__ import annotations

import re

_PATTERNS = (
    re.compile(r"\bhf_[A-Za-z0-9]{16,}"),  # Hugging Face user access tokens
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style API keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{16,}"),
)
_SECRET_FLAG = re.compile(r"(?i)(--?[\w-]*(?:token|key|secret|password)[\w-]*[= ])(\S+)")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Return `text` with known secrets and secret-looking strings replaced by `***`."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    for p in _PATTERNS:
        text = p.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return _SECRET_FLAG.sub(lambda m: m.group(1) + "***", text)
