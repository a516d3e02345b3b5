"""Find the gold answer inside a worked solution.

Pure string functions: the last `\\boxed{...}` of a MATH solution (braces
matched, not regex-guessed), and the text after `####` in a GSM8K answer.
"""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces matched; None if absent.

    >>> last_boxed(r"so $x = \\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    >>> last_boxed(r"\\boxed 5") is None
    False
    """
    starts = [m.end() for m in _BOX.finditer(text)]
    for start in reversed(starts):
        if start < len(text) and text[start] == "{":
            depth = 0
            for i in range(start, len(text)):
                c = text[i]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        return text[start + 1 : i].strip()
            continue  # unclosed: try an earlier box
        m = re.match(r"[^\s$]+", text[start:])  # `\boxed 5`
        if m:
            return m.group(0)
    return None


def gsm8k_final(text: str) -> str | None:
    """The final answer of a GSM8K solution: the text after the last `####`, commas dropped.

    >>> gsm8k_final("She makes 9 * 2 = $18.\\n#### 18")
    '18'
    """
    _, sep, tail = text.rpartition("####")
    if not sep:
        return None
    tail = tail.strip().replace(",", "")
    return tail or None
