"""Verifiable arithmetic problems with step-by-step traces: the lab's dataset.

A problem is an integer expression (`(37+5)*6`) whose prompt is the expression
followed by `=`, whose answer is its value, and whose solution trace performs
one operation per step in evaluation order, then boxes the result:

    prompt    (37+5)*6=
    solution  37+5=42;42*6=252;\\boxed{252}

Difficulty comes from the kinds of operation, operand digits, the number of
operations, and carries/borrows; each problem records its bucket and those
features. Generation is a pure function of (spec, seed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BOX_OPEN, BOX_CLOSE = "\\boxed{", "}"


@dataclass(frozen=True)
class Bucket:
    """One difficulty bucket: a template and operand digit counts."""

    name: str
    template: str  # operators and parentheses over slots a, b, c, d: "a+b", "(a+b)*c", ...
    digits: tuple[int, ...]  # digits of each slot, in slot order
    weight: float = 1.0  # share of the pool


@dataclass(frozen=True)
class Problem:
    prompt: str
    answer: str
    solution: str
    bucket: str
    n_ops: int
    carries: int  # carries and borrows over all steps (a difficulty feature)
    max_digits: int


def _carries_add(x: int, y: int) -> int:
    x, y, c, n = abs(x), abs(y), 0, 0
    while x or y:
        c = 1 if (x % 10 + y % 10 + c) >= 10 else 0
        n += c
        x, y = x // 10, y // 10
    return n


def _borrows_sub(x: int, y: int) -> int:
    x, y = max(abs(x), abs(y)), min(abs(x), abs(y))
    b, n = 0, 0
    while x or y:
        b = 1 if (x % 10 - y % 10 - b) < 0 else 0
        n += b
        x, y = x // 10, y // 10
    return n


def _apply(op: str, x: int, y: int) -> tuple[int, int]:
    """(result, carries) of one step."""
    if op == "+":
        return x + y, _carries_add(x, y) if (x >= 0) == (y >= 0) else _borrows_sub(x, y)
    if op == "-":
        return x - y, _borrows_sub(x, y) if (x >= 0) == (y >= 0) else _carries_add(x, y)
    if op == "*":
        return x * y, _carries_mul(x, y)
    raise ValueError(op)


def _carries_mul(x: int, y: int) -> int:
    """Digit products that carry, over the long multiplication of |x| by |y|."""
    n = 0
    for dy in str(abs(y)):
        c = 0
        for dx in reversed(str(abs(x))):
            c = (int(dx) * int(dy) + c) // 10
            n += c > 0
    return n


# -- a tiny expression parser (precedence and parentheses), for traces ----------

def _tokens(expr: str) -> list[str]:
    out, num = [], ""
    for ch in expr:
        if ch.isdigit():
            num += ch
            continue
        if num:
            out.append(num)
            num = ""
        out.append(ch)
    if num:
        out.append(num)
    return out


def _parse(tokens: list[str]):
    """Return an AST: int, or (op, left, right)."""
    pos = 0

    def expr():
        nonlocal pos
        node = term()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            node = (op, node, term())
        return node

    def term():
        nonlocal pos
        node = atom()
        while pos < len(tokens) and tokens[pos] == "*":
            pos += 1
            node = ("*", node, atom())
        return node

    def atom():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            node = expr()
            pos += 1  # ")"
            return node
        return int(tok)

    tree = expr()
    if pos != len(tokens):
        raise ValueError(f"trailing tokens in {''.join(tokens)!r}")
    return tree


def trace(expr: str) -> tuple[list[str], int, int]:
    """Steps (`a op b=c`) in evaluation order, the value, and carries/borrows counted."""
    steps: list[str] = []
    carries = 0

    def ev(node) -> int:
        nonlocal carries
        if isinstance(node, int):
            return node
        op, left, right = node
        x, y = ev(left), ev(right)
        value, c = _apply(op, x, y)
        carries += c
        steps.append(f"{x}{op}{y}={value}")
        return value

    value = ev(_parse(_tokens(expr)))
    return steps, value, carries


def format_solution(steps: list[str], value: int) -> str:
    return ";".join([*steps, f"{BOX_OPEN}{value}{BOX_CLOSE}"])


def make_problem(bucket: Bucket, rng: random.Random) -> Problem:
    slots = "abcd"
    values = {}
    for slot, d in zip(slots, bucket.digits):
        lo = 10 ** (d - 1) if d > 1 else 1
        values[slot] = rng.randint(lo, 10**d - 1)
    expr = "".join(str(values[ch]) if ch in values else ch for ch in bucket.template)
    steps, value, carries = trace(expr)
    return Problem(
        prompt=f"{expr}=",
        answer=str(value),
        solution=format_solution(steps, value),
        bucket=bucket.name,
        n_ops=len(steps),
        carries=carries,
        max_digits=max(bucket.digits),
    )


def apportion(n: int, weights: list[float]) -> list[int]:
    """Split n into integer quotas proportional to weights (largest remainder; sums to n)."""
    total = sum(weights)
    exact = [n * w / total for w in weights]
    quotas = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in by_remainder[: n - sum(quotas)]:
        quotas[i] += 1
    return quotas


def generate(buckets: tuple[Bucket, ...], n: int, seed: int, exclude: set[str] = frozenset()) -> list[Problem]:
    """`n` distinct problems, buckets drawn in proportion to their weights; pure in (buckets, n, seed)."""
    rng = random.Random(seed)
    quotas = apportion(n, [b.weight for b in buckets])
    out: list[Problem] = []
    seen = set(exclude)
    for bucket, quota in zip(buckets, quotas):
        tries = 0
        made = 0
        while made < quota:
            p = make_problem(bucket, rng)
            tries += 1
            if p.prompt in seen:
                if tries > quota * 50:
                    raise ValueError(f"bucket {bucket.name} has too few distinct problems for {quota}")
                continue
            seen.add(p.prompt)
            out.append(p)
            made += 1
    rng.shuffle(out)
    return out
