"""Dims named by arithmetic on other dims: ``past_sequence_length + sequence_length``,
``2*seq``, ``floor(seq/2)``, ``Max(1, s0 - 1)``, as exporters (optimum, torch.onnx's dynamo
exporter, onnxruntime's symbolic shape inference) write them.

A small recursive-descent parser builds a sympy expression from the text; nothing is ever
passed to Python's ``eval`` (nor to sympy's ``parse_expr``, which uses it). The grammar:

    expr   := term (('+' | '-') term)*
    term   := unary (('*' | '/' | '//' | '%') unary)*
    unary  := '-' unary | power
    power  := atom ('**' unary)?
    atom   := INT | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'

with the functions ``floor``, ``ceil``/``ceiling``, ``min``/``Min``, ``max``/``Max``,
``Mod``/``mod``, ``abs``, and torch's ``FloorDiv``, ``CeilDiv``, ``FloorToInt``,
``CeilToInt``, ``IntTrueDiv``, ``TruncToInt``. Names are identifiers (``[A-Za-z_][\\w.]*``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

import sympy

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_.]*)|(\*\*|//|[-+*/%(),]))")
#: Longest text parsed (a dim name longer than this is a name, not arithmetic).
MAX_TEXT = 400


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError(f"unexpected {text[pos:pos + 10]!r}")
            number, name, op = m.groups()
            self.tokens.append(("int", number) if number else ("name", name) if name
                               else ("op", op))
            pos = m.end()
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ValueError(f"expected {value or 'a term'}")
        self.i += 1
        return tok

    def parse(self) -> sympy.Expr:
        e = self.expr()
        tok = self.peek()
        if tok is not None:
            raise ValueError(f"unexpected {tok[1]!r}")
        return e

    def expr(self) -> sympy.Expr:
        self.depth += 1
        if self.depth > 50:
            raise ValueError("nested too deeply")
        e = self.term()
        while (tok := self.peek()) is not None and tok[1] in ("+", "-"):
            self.take()
            e = e + self.term() if tok[1] == "+" else e - self.term()
        self.depth -= 1
        return e

    def term(self) -> sympy.Expr:
        e = self.unary()
        while (tok := self.peek()) is not None and tok[1] in ("*", "/", "//", "%"):
            self.take()
            rhs = self.unary()
            if tok[1] == "*":
                e = e * rhs
            elif tok[1] == "/":
                e = e / rhs
            elif tok[1] == "//":
                e = sympy.floor(e / rhs)
            else:
                e = sympy.Mod(e, rhs)
        return e

    def unary(self) -> sympy.Expr:
        tok = self.peek()
        if tok is not None and tok[1] == "-":
            self.take()
            return -self.unary()
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        tok = self.peek()
        if tok is not None and tok[1] == "**":
            self.take()
            return base ** self.unary()
        return base

    def atom(self) -> sympy.Expr:
        kind, value = self.take()
        if kind == "int":
            return sympy.Integer(int(value))
        if kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt[1] == "(":
                fn = FUNCTIONS.get(value)
                if fn is None:
                    raise ValueError(f"unknown function {value!r}")
                self.take("(")
                args = [self.expr()]
                while (tok := self.peek()) is not None and tok[1] == ",":
                    self.take()
                    args.append(self.expr())
                self.take(")")
                return fn(*args)
            return sympy.Symbol(value, integer=True, nonnegative=True)
        if value == "(":
            e = self.expr()
            self.take(")")
            return e
        raise ValueError(f"unexpected {value!r}")


FUNCTIONS: dict[str, Callable[..., sympy.Expr]] = {
    "floor": sympy.floor, "FloorToInt": sympy.floor,
    "ceil": sympy.ceiling, "ceiling": sympy.ceiling, "CeilToInt": sympy.ceiling,
    "min": sympy.Min, "Min": sympy.Min, "max": sympy.Max, "Max": sympy.Max,
    "Mod": sympy.Mod, "mod": sympy.Mod, "PythonMod": sympy.Mod, "abs": sympy.Abs,
    "FloorDiv": lambda a, b: sympy.floor(a / b), "CeilDiv": lambda a, b: sympy.ceiling(a / b),
    "IntTrueDiv": lambda a, b: a / b, "TruncToInt": sympy.floor,
}


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> sympy.Expr | None:
    """The expression a dim's text names, or None when it is a plain name (or not arithmetic
    this grammar reads: such a text stays one opaque name)."""
    if not text or len(text) > MAX_TEXT or _TOKEN.fullmatch(text) is not None:
        return None
    try:
        expr = _Parser(text).parse()
    except (ValueError, TypeError, ZeroDivisionError, RecursionError):
        return None
    return expr if expr.free_symbols else None


def names(expr: sympy.Expr) -> list[str]:
    """The names an expression reads, sorted."""
    return sorted(s.name for s in expr.free_symbols)


def evaluate(expr: sympy.Expr, values: Mapping[str, int]) -> int | None:
    """The expression's value with every name bound, or None when a name is unbound or the
    value is not a whole number."""
    if any(n not in values for n in names(expr)):
        return None
    try:
        result = expr.subs({s: int(values[s.name]) for s in expr.free_symbols})
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not result.is_number or not result.is_integer:
        return None
    return int(result)


def arithmetic(text: str, known: set[str] | frozenset[str]) -> sympy.Expr | None:
    """The expression ``text`` names, when it is arithmetic rather than a name: it reads only
    names the model uses on its own (``known``), or it has more than a hyphen in it
    (``2*seq``, ``a + b``). A hyphenated identifier (``seq-len``) of unknown parts stays a
    name."""
    expr = parse(text)
    if expr is None:
        return None
    if all(n in known for n in names(expr)) or re.search(r"[\s*/%+(),]|\d", text):
        return expr
    return None


def free_names(text: str, known: set[str] | frozenset[str]) -> list[str]:
    """The names to bind for a dim ``text``: an expression's names (see `arithmetic`), else
    the text itself (one opaque name)."""
    expr = arithmetic(text, known)
    return [text] if expr is None else names(expr)
