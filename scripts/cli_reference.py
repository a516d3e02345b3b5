"""Print the README's CLI reference from the commands' own --help.

    python scripts/cli_reference.py            # print the markdown
    python scripts/cli_reference.py --check    # exit 1 if README.md differs (tests run this)

The reference sits in README.md between the markers
`<!-- cli-reference:start -->` and `<!-- cli-reference:end -->`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from curator.cli import cli

START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"
README = Path(__file__).resolve().parents[1] / "README.md"


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from _walk(cmd.commands[name], [*path, name])


def reference() -> str:
    parts = []
    for path, cmd in _walk(cli, ["curator"]):
        with click.Context(cmd, info_name=" ".join(path), terminal_width=100) as ctx:
            text = cmd.get_help(ctx)
        parts.append(f"#### `{' '.join(path)}`\n\n```\n{text}\n```\n")
    return "\n".join(parts)


def main() -> int:
    block = f"{START}\n{reference()}{END}"
    if "--check" in sys.argv:
        text = README.read_text()
        if START not in text or END not in text:
            print(f"README.md has no {START} ... {END} block", file=sys.stderr)
            return 1
        current = text[text.index(START): text.index(END) + len(END)]
        if current != block:
            print("README.md's CLI reference is stale: run `python scripts/cli_reference.py --write`",
                  file=sys.stderr)
            return 1
        return 0
    if "--write" in sys.argv:
        text = README.read_text()
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
        README.write_text(text)
        return 0
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
