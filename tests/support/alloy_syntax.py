"""A parser for the Alloy configuration syntax (formerly River), as far as the roles write it.

No Alloy parser is packaged for Python or npm, and Alloy itself cannot run here, so the tests
read the rendered configuration with this one: blocks (`name.dotted "label" { ... }`),
attributes (`name = expression`), and expressions made of strings, numbers, booleans, null,
arrays, objects and references (`loki.write.default.receiver`). Anything else is a syntax error.
It follows https://grafana.com/docs/alloy/latest/get-started/syntax/ (comments are `//` and
`/* */`; strings are double-quoted with Go escapes, or back-quoted raw).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\]()=,.])
    """,
    re.VERBOSE | re.DOTALL,
)


class AlloySyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    path: str


@dataclass
class Block:
    name: str
    label: str | None
    attributes: dict[str, object] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def children(self, name: str) -> list[Block]:
        return [block for block in self.blocks if block.name == name]


def tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match:
            line = text.count("\n", 0, position) + 1
            raise AlloySyntaxError(f"line {line}: unexpected {text[position : position + 20]!r}")
        kind = match.lastgroup
        if kind != "space":
            tokens.append((kind, match.group(), text.count("\n", 0, position) + 1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self, offset: int = 0) -> tuple[str, str, int] | None:
        at = self.index + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise AlloySyntaxError(f"unexpected end of file, expected {value or kind}")
        if (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            raise AlloySyntaxError(f"line {token[2]}: expected {value or kind}, got {token[1]!r}")
        self.index += 1
        return token

    def body(self, closing: str | None) -> Block:
        body = Block(name="", label=None)
        while (token := self.peek()) is not None and token[1] != closing:
            name = self.take(kind="ident")[1]
            if self.peek() and self.peek()[1] == "=":
                self.take("=")
                if name in body.attributes:
                    raise AlloySyntaxError(f"line {token[2]}: attribute {name} set twice")
                body.attributes[name] = self.expression()
                continue
            while self.peek() and self.peek()[1] == ".":
                self.take(".")
                name += "." + self.take(kind="ident")[1]
            label = None
            if self.peek() and self.peek()[0] == "string":
                label = json.loads(self.take(kind="string")[1])
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label):
                    raise AlloySyntaxError(
                        f"line {token[2]}: block label {label!r} is not an identifier"
                    )
            self.take("{")
            inner = self.body("}")
            self.take("}")
            body.blocks.append(Block(name, label, inner.attributes, inner.blocks))
        if closing is None and self.peek() is not None:
            raise AlloySyntaxError(f"line {self.peek()[2]}: unexpected {self.peek()[1]!r}")
        return body

    def expression(self) -> object:
        kind, value, line = self.take()
        if kind == "string":
            return json.loads(value)
        if kind == "raw":
            return value[1:-1]
        if kind == "number":
            return float(value) if "." in value else int(value)
        if value == "[":
            items = []
            while self.peek() and self.peek()[1] != "]":
                items.append(self.expression())
                if self.peek() and self.peek()[1] == ",":
                    self.take(",")
                else:
                    break
            self.take("]")
            return items
        if value == "{":
            entries: dict[str, object] = {}
            while self.peek() and self.peek()[1] != "}":
                key_kind, key, _position = self.take()
                if key_kind == "string":
                    key = json.loads(key)
                elif key_kind != "ident":
                    raise AlloySyntaxError(f"line {line}: object key {key!r}")
                self.take("=")
                entries[key] = self.expression()
                if self.peek() and self.peek()[1] == ",":
                    self.take(",")
                else:
                    break
            self.take("}")
            return entries
        if kind == "ident":
            if value in ("true", "false"):
                return value == "true"
            if value == "null":
                return None
            path = value
            while self.peek() and self.peek()[1] == ".":
                self.take(".")
                path += "." + self.take(kind="ident")[1]
            if self.peek() and self.peek()[1] == "(":
                raise AlloySyntaxError(f"line {line}: function calls are not used by the roles")
            return Reference(path)
        raise AlloySyntaxError(f"line {line}: unexpected {value!r}")


def parse(text: str) -> Block:
    """The configuration as one top-level Block whose `blocks` are the components."""
    return _Parser(text).body(None)


def references(node: object) -> list[Reference]:
    """Every reference in an attribute value or a block, in order."""
    if isinstance(node, Reference):
        return [node]
    if isinstance(node, list):
        return [ref for item in node for ref in references(item)]
    if isinstance(node, dict):
        return [ref for value in node.values() for ref in references(value)]
    if isinstance(node, Block):
        return references(list(node.attributes.values())) + [
            ref for block in node.blocks for ref in references(block)
        ]
    return []
