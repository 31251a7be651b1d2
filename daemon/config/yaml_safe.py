"""Bounded, safe YAML loading for vgw's config file: whatever a file holds, the
loader ends in bounded time and memory with a YamlProblem that names the line,
or with the data and the line of every key.

The limits, each far above any real config (one with 10 connections of two
tunnels and 100 static routes each is ~20 KB and ~5,000 values):
- MAX_BYTES (1 MiB) for the file, read no further than that;
- MAX_DEPTH (32) levels of nesting, counted while composing, so that neither
  PyYAML's recursive composer and constructor nor anything walking the data
  comes near Python's recursion limit;
- MAX_VALUES (100,000) values counted with every alias expanded, counted while
  composing and before anything walks the data: a "billion laughs" (aliases of
  aliases, 10^9 values from 1 KB) is refused at the alias where it passes the
  limit. Recursive aliases (an anchor used inside itself) are refused too.
The events come from libyaml's parser when PyYAML has it (1 MiB of config in
~1.5 s of CPU on the VM of 2026-12-07, against ~6 s with PyYAML's own); the
composing is PyYAML's, with the counts above.
Values that PyYAML's safe constructors cannot turn into Python objects (an
integer of more than 4,300 digits, a timestamp with month 99, bad base64) and
characters YAML does not allow (a binary file) become YamlProblems with a line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_VALUES = 100_000

KeyPath = tuple  # str keys and int list indexes, as in pydantic's loc


class YamlProblem(Exception):
    """The file cannot be read as YAML: what to change and, if known, the line."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Document:
    """The data of a YAML file and where each key path sits in it."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # (key path, message, line) of keys that appear twice in one mapping
    duplicates: list[tuple[KeyPath, str, int]] = field(default_factory=list)


def read_text(path: str | Path) -> str:
    """The file's text, at most MAX_BYTES of UTF-8; YamlProblem otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)   # a device or a FIFO may never end
    except OSError as exc:
        raise YamlProblem(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise YamlProblem(f"is larger than {MAX_BYTES:,} bytes (1 MiB), the limit for a config file;"
                          " a config with 10 connections takes a few KB: is this the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise YamlProblem(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save the file"
                          " as UTF-8", line) from None


def load(text: str, raw_text_keys: frozenset[str] = frozenset()) -> Document | None:
    """Parse one YAML document within the limits; None for an empty file.

    Keys in `raw_text_keys` keep the text exactly as written when it is a plain
    scalar (YAML would read `pre_shared_key: 012345678` as a number)."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlProblem(f"is larger than {MAX_BYTES:,} bytes (1 MiB), the limit for a config file")
    try:
        loader = _loader(text)
    except yaml.reader.ReaderError as exc:
        raise _unreadable(text, exc) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        doc = Document(None, {(): node.start_mark.line + 1})
        raw: list[tuple[KeyPath, str]] = []
        # Walk before constructing: construction flattens merge keys in place.
        _walk(node, (), doc, raw, raw_text_keys)
        doc.data = loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise _unreadable(text, exc) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax(exc, text) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    for path, value in raw:
        parent = _get_path(doc.data, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent and not isinstance(parent[path[-1]], str):
            parent[path[-1]] = value
    return doc


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, counting depth and alias-expanded values as it goes."""

    def __init__(self):
        super().__init__()
        self._depth = 0
        self._values: dict[int, int] = {}   # id(node) -> values under it, aliases expanded
        self._total = 0                     # values so far, aliases expanded
        self._aliased = 0                   # of which by aliases

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._values:
                # the anchor is still being composed: it contains itself
                raise YamlProblem(f"the alias on line {mark.line + 1} refers to a value that contains it"
                                  " (a recursive alias); a config has no use for one", mark.line + 1)
            self._count(self._values[id(node)], mark, aliased=True)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlProblem(f"nests more than {MAX_DEPTH} levels deep on line {mark.line + 1}; a config"
                              " needs fewer than 10", mark.line + 1)
        self._count(1, mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = ()
        # bounded: the running total stopped before any node could pass MAX_VALUES
        self._values[id(node)] = 1 + sum(self._values[id(child)] for child in children)
        return node

    def _count(self, values: int, mark, aliased: bool = False) -> None:
        self._total += values
        self._aliased += values if aliased else 0
        if self._total <= MAX_VALUES:
            return
        line = mark.line + 1
        if self._aliased:
            raise YamlProblem(f"expands to more than {MAX_VALUES:,} values by line {line} with its aliases"
                              " (aliases of aliases, a \"billion laughs\"?); a config has a few thousand", line)
        raise YamlProblem(f"has more than {MAX_VALUES:,} values by line {line}; a config has a few thousand",
                          line)


class _SafeValues(yaml.constructor.SafeConstructor):
    """PyYAML's safe constructor; a value it cannot make is a YamlProblem with its line."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (yaml.YAMLError, YamlProblem):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. int("1" * 5000), a timestamp in month 99
            line = node.start_mark.line + 1
            raise YamlProblem(f"cannot read the value on line {line} ({_short(str(exc))}); write it as"
                              " plain text or a plain number", line) from None


class _PureLoader(_BoundedComposer, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                  _SafeValues, yaml.resolver.Resolver):
    def __init__(self, text: str):
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _SafeValues.__init__(self)
        yaml.resolver.Resolver.__init__(self)


try:  # libyaml's parser makes the events ~4x faster; the composing stays ours
    from yaml._yaml import CParser as _CParser
except ImportError:  # PyYAML built without libyaml
    _CParser = None


def _loader(text: str):
    if _CParser is None:
        return _PureLoader(text)
    return _FastLoader(text)


if _CParser is not None:
    class _FastLoader(_BoundedComposer, _CParser, _SafeValues, yaml.resolver.Resolver):
        def __init__(self, text: str):
            _CParser.__init__(self, text)
            _BoundedComposer.__init__(self)
            _SafeValues.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _unreadable(text: str, exc: yaml.reader.ReaderError) -> YamlProblem:
    position = exc.position if isinstance(exc.position, int) else 0
    line = text.count("\n", 0, position) + 1
    char = exc.character
    code = ord(char) if isinstance(char, str) and len(char) == 1 else char if isinstance(char, int) else None
    shown = f"#x{code:04x}" if code is not None else "a special character"
    return YamlProblem(f"line {line} has a character that YAML does not allow ({shown}); a binary file?"
                       " A config is UTF-8 text", line)


def _syntax(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    message = f"YAML syntax error: {exc.problem or exc.context}"
    if exc.context and exc.problem:
        message += f" ({exc.context}, line {exc.context_mark.line + 1})" if exc.context_mark else f" ({exc.context})"
    line = mark.line + 1 if mark else None
    # a tab where YAML wants indentation (libyaml does not name the character)
    tab_line = line is not None and "\t" in "".join(text.split("\n")[max(0, line - 2):line])
    if "\\t" in message or "\t" in message or (tab_line and "cannot start any token" in message):
        message += "; indent with spaces, not tabs"
    return YamlProblem(message, line)


def _walk(node, path: KeyPath, doc: Document, raw: list, raw_text_keys: frozenset[str]) -> None:
    """Record the line of every key path, duplicate keys and raw-text values.
    Bounded: the loader refused more than MAX_VALUES values and MAX_DEPTH levels."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in seen:
                # PyYAML would silently keep the last one.
                doc.duplicates.append((path + (key,), f"appears twice in the same mapping (lines {seen[key]}"
                                       f" and {line}); delete one", line))
            seen.setdefault(key, line)
            doc.lines.setdefault(path + (key,), line)
            plain = isinstance(value_node, yaml.ScalarNode) and not value_node.style   # libyaml: "", PyYAML: None
            if key in raw_text_keys and plain:
                raw.append((path + (key,), value_node.value))
            _walk(value_node, path + (key,), doc, raw, raw_text_keys)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines.setdefault(path + (index,), item.start_mark.line + 1)
            _walk(item, path + (index,), doc, raw, raw_text_keys)


def _get_path(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data
