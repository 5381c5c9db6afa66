"""A strict YAML reader for the config: safe loading, no duplicate keys, no YAML 1.1 surprises.

PyYAML implements YAML 1.1, where `010` is 8, `on` is true and `1:30` is 90; YAML 1.2 reads
them differently, and so may the person who wrote them. A plain (unquoted) value is accepted
only when it means the same to both: `null`/`~`, `true`/`false`, decimal integers without
leading zeros, decimals like `0.5`, and text that neither reads as a number, boolean or date.
Anything else is an error that says what to write instead. Quoted values are always text.

Anchors and aliases are allowed (they repeat a value verbatim); merge keys (`<<`) are not: they
exist only in YAML 1.1 and hide which keys a mapping really has. Explicit tags (`!!str`) are not
supported either: quoting says the same thing.

Every key and list item gets the 1-based line it starts on, so a problem found later can be
reported as `config.yaml:14: policies[1].keep_daily: ...`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["Document", "KeyPath", "YamlError", "YamlProblem", "format_path", "load"]

KeyPath = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_MAX_VALUES = 100_000  # aliases can make a small file expand enormously ("billion laughs")

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_YAML11_BOOLS = {"y": True, "yes": True, "on": True, "n": False, "no": False, "off": False}
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+")
# YAML 1.2 core schema numbers: what a 1.2 reader makes of a plain value.
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_OCTAL = re.compile(r"0o[0-7]+")
_CORE_HEX = re.compile(r"0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_CORE_SPECIAL = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """Something wrong in the YAML text itself; `line` is None when the parser cannot tell."""

    line: int | None
    path: KeyPath
    message: str


class YamlError(Exception):
    """The text is not acceptable YAML for a config; `.problems` lists every problem found.

    `.document` is what could be read anyway (refused values left as their text, duplicate keys
    dropped), so a caller can report its own problems alongside; None after a syntax error.
    """

    def __init__(self, problems: Sequence[YamlProblem], document: Document | None = None) -> None:
        super().__init__("\n".join(p.message for p in problems))
        self.problems = tuple(problems)
        self.document = document


@dataclass(frozen=True, slots=True)
class Document:
    """Plain Python data (dicts, lists, str, int, float, bool, None) and where each key was."""

    data: dict[str, Any]
    lines: Mapping[KeyPath, int]

    def line_of(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest ancestor present in the file (a missing key)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return self.lines.get((), 1)


def format_path(path: KeyPath) -> str:
    """`("policies", 1, "keep_daily")` -> `policies[1].keep_daily`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load(text: str) -> Document:
    """Parse one YAML document whose top level is a mapping. Raises YamlError."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlError([YamlProblem(line, (), _syntax_message(error))]) from error
    except yaml.YAMLError as error:  # e.g. a control character in the text
        raise YamlError([YamlProblem(None, (), f"not readable as YAML: {error}")]) from error
    finally:
        loader.dispose()
    if root is None:
        raise YamlError([YamlProblem(None, (), "the file is empty: it needs at least `policies:`")])
    builder = _Builder(loader)
    if not isinstance(root, MappingNode):
        raise YamlError(
            [YamlProblem(_line(root), (), "the top level must be a mapping (api:, policies: ...)")]
        )
    try:
        data = builder.mapping(root, ())
    except _TooLarge as error:
        raise YamlError([YamlProblem(None, (), str(error))]) from error
    document = Document(data=data, lines=builder.lines)
    if builder.problems:
        raise YamlError(builder.problems, document)
    return document


class _Loader(yaml.SafeLoader):
    """SafeLoader used only to compose nodes; values are built by _Builder, not by PyYAML."""


class _TooLarge(Exception):
    pass


class _Builder:
    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.lines: dict[KeyPath, int] = {(): 1}
        self.problems: list[YamlProblem] = []
        self.values = 0

    def value(self, node: Node, path: KeyPath) -> Any:
        self.values += 1
        if self.values > _MAX_VALUES:
            raise _TooLarge(f"the file expands to more than {_MAX_VALUES} values (aliases?)")
        if isinstance(node, MappingNode):
            return self.mapping(node, path)
        if isinstance(node, SequenceNode):
            return self.sequence(node, path)
        assert isinstance(node, ScalarNode)
        return self.scalar(node, path)

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != _TAG + "map":
            self.unsupported_tag(node, path)
            return {}
        result: dict[str, Any] = {}
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key is None:
                continue
            line, key_path = _line(key_node), (*path, key)
            if key in first_lines:
                self.report(
                    line, key_path, f"duplicate key {key!r} (first at line {first_lines[key]})"
                )
                continue
            first_lines[key] = line
            self.lines[key_path] = line
            result[key] = self.value(value_node, key_path)
        return result

    def sequence(self, node: SequenceNode, path: KeyPath) -> list[Any]:
        if node.tag != _TAG + "seq":
            self.unsupported_tag(node, path)
            return []
        items = []
        for index, item in enumerate(node.value):
            self.lines[(*path, index)] = _line(item)
            items.append(self.value(item, (*path, index)))
        return items

    def key(self, node: Node, path: KeyPath) -> str | None:
        if isinstance(node, ScalarNode) and node.style is None and node.value == "<<":
            self.report(_line(node), path, "merge keys (<<) are not supported: write the keys out")
            return None
        if not isinstance(node, ScalarNode):
            self.report(_line(node), path, "a key must be a name, not a list or mapping")
            return None
        key = self.value(node, (*path, node.value))
        if not isinstance(key, str):
            message = "a key must be a name (text), not a number, boolean or null"
            self.report(_line(node), (*path, node.value), message)
            return None
        return key

    def scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        text = node.value
        if node.style is not None:  # quoted or block text
            if node.tag != _TAG + "str":
                self.unsupported_tag(node, path)
            return text
        # The tag PyYAML (YAML 1.1) gives a plain value; a different one was written explicitly.
        yaml11_tag: str = self.loader.resolve(  # type: ignore[no-untyped-call]
            ScalarNode, text, (True, False)
        )
        if node.tag != yaml11_tag:
            self.unsupported_tag(node, path)
            return text
        problem = _plain_problem(text, yaml11_tag, self.loader)
        if problem is not None:
            self.report(_line(node), path, problem)
            return text
        return _plain_value(text)

    def unsupported_tag(self, node: Node, path: KeyPath) -> None:
        self.report(
            _line(node),
            path,
            f"explicit tags such as {node.tag.replace(_TAG, '!!')} are not supported: "
            "quote a value to make it text",
        )

    def report(self, line: int, path: KeyPath, message: str) -> None:
        self.problems.append(YamlProblem(line, path, message))


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    parts = [part for part in (error.context, error.problem) if part]
    return "not valid YAML: " + ", ".join(parts)


def _plain_value(text: str) -> Any:
    """The value of a plain scalar that _plain_problem accepted."""
    if text in _NULLS:
        return None
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _plain_problem(text: str, yaml11_tag: str, loader: _Loader) -> str | None:
    """Why a plain scalar is ambiguous, with what to write instead; None when it is fine."""
    if text in _NULLS or text in ("true", "false") or _INT.fullmatch(text):
        return None
    if _FLOAT.fullmatch(text):
        return None
    lowered = text.lower()
    if lowered in _YAML11_BOOLS:
        meaning = "true" if _YAML11_BOOLS[lowered] else "false"
        return (
            f"`{text}` is ambiguous in YAML ({meaning} in YAML 1.1, text in YAML 1.2): "
            f"write {meaning}, or quote it if you mean text"
        )
    if yaml11_tag == _TAG + "bool":  # True, FALSE, ...
        return f"`{text}`: write {lowered} in lower case, or quote it if you mean text"
    yaml11: int | float | None = None
    if yaml11_tag in (_TAG + "int", _TAG + "float"):
        yaml11 = loader.construct_object(ScalarNode(yaml11_tag, text))
    yaml12 = _core_number(text)
    if yaml11 is not None or yaml12 is not None:
        return _number_problem(text, yaml11, yaml12)
    if yaml11_tag == _TAG + "timestamp":
        return f"`{text}` is ambiguous in YAML (a date in YAML 1.1, text in YAML 1.2): quote it"
    if yaml11_tag != _TAG + "str":  # `=` and other YAML 1.1 oddities
        return f"`{text}` has a special meaning in YAML 1.1: quote it if you mean text"
    return None


def _core_number(text: str) -> int | float | None:
    """What a YAML 1.2 (core schema) reader makes of a plain scalar, if a number."""
    if text.lower() in _CORE_SPECIAL:
        return _CORE_SPECIAL[text.lower()]
    if _CORE_INT.fullmatch(text):
        return int(text)
    if _CORE_OCTAL.fullmatch(text):
        return int(text[2:], 8)
    if _CORE_HEX.fullmatch(text):
        return int(text[2:], 16)
    if _CORE_FLOAT.fullmatch(text):
        return float(text)
    return None


def _number_problem(text: str, yaml11: int | float | None, yaml12: int | float | None) -> str:
    number = yaml12 if yaml12 is not None else yaml11
    assert number is not None
    if ":" in text:
        fix = "write a plain number or a duration such as 1h30min"
    elif math.isfinite(number):
        fix = f"write {number}"
    else:
        fix = "write a finite number"
    read11, read12 = _reading(text, yaml11, "1.1"), _reading(text, yaml12, "1.2")
    if read11 == read12:
        return f"`{text}` is not a plain decimal number ({read11}): {fix}, or quote it for text"
    return (
        f"`{text}` is ambiguous in YAML ({read11} in YAML 1.1, {read12} in YAML 1.2): "
        f"{fix}, or quote it if you mean text"
    )


def _reading(text: str, value: int | float | None, version: str) -> str:
    """How one YAML version reads a plain number-like value, e.g. `octal 8` or `text`."""
    if value is None:
        return "text"
    body = text.lstrip("+-").lower()
    kind = ""
    if body.startswith("0x"):
        kind = "hexadecimal "
    elif body.startswith("0b"):
        kind = "binary "
    elif isinstance(value, int) and (
        body.startswith("0o") or (version == "1.1" and body[:1] == "0" and body[1:2].isdigit())
    ):
        kind = "octal "
    elif ":" in body:
        kind = "sexagesimal "
    return f"{kind}{value}"
