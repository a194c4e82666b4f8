"""Safe, bounded YAML for the documents people write: policy files and fabricd's config.

:func:`load_yaml` is PyYAML (libyaml's event parser where present) with
its own resolver, composer and constructor in place of PyYAML's YAML 1.1
ones, so a document means one thing and costs bounded work:

- **YAML 1.2 core scalars**, not PyYAML's YAML 1.1: only ``true``/``false``
  are booleans (``yes``, ``on``, ``n`` stay strings); integers are decimal
  without leading zeros (``1:30``, ``0x10``, ``0o17``, ``010``, ``1_000`` are
  strings, so a field that wants a number names them instead of silently
  reading 90, 16, 15, 8 or 1000); ``1e308``, ``.5``, ``.inf`` are floats;
  ``~``, ``null`` and an empty value are null. Timestamps, binary, sets and
  ordered maps do not exist; any other explicit tag is refused.
- **No aliases, anchors or merge keys** (``*a``, ``&a``, ``<<:``): a few
  hundred bytes of aliases can expand to gigabytes, and a merge key can
  write a key twice behind the duplicate check.
- **Duplicate keys are errors**, also when two spellings give the same value
  (``1`` and ``1.0``, ``"a"`` and ``!!str a``); keys must be scalars.
- **Bounded**: at most ``max_bytes`` of input (1 MiB by default),
  ``max_depth`` nested collections (deeper is an error, never a ``RecursionError``), numbers of
  at most 100 characters, and strings must be valid Unicode (no lone
  surrogates from ``"\\ud800"`` escapes, which no wire format can carry).

Every problem is one :class:`YamlError` line with its position, and no
message quotes more than a short excerpt of the input. This module only
turns text into plain Python values (dict, list, str, int, float, bool,
None); what the values mean is the caller's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from controller.errors import excerpt

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_NUMBER_CHARS",
    "YamlError",
    "load_yaml",
    "read_yaml_text",
]

# Parsing costs about 2 s per MiB here (libyaml events, Python nodes); callers
# with smaller documents pass a smaller bound.
MAX_DOCUMENT_BYTES = 1024 * 1024
# Policies nest five deep (document, match list, alternative, port list,
# {lo, hi}) and the config two; 32 leaves room without risking recursion.
MAX_DEPTH = 32
MAX_NUMBER_CHARS = 100
# How much of PyYAML's own problem text a message shows.
_PROBLEM_CHARS = 160

_TAG = "tag:yaml.org,2002:"
_CORE_SCALARS: tuple[tuple[str, str, str], ...] = (
    # (tag, pattern, first characters); order matters: int before float.
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?(?:0|[1-9][0-9]*)", "-+0123456789"),
    (
        "float",
        r"[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        "-+0123456789.",
    ),
    ("null", r"~|null|Null|NULL|", "~nN"),
)
_INT_RE = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_FLOAT_RE = re.compile(_CORE_SCALARS[2][1] + r"\Z")
_BOOLS = {"true": True, "false": False}


class YamlError(ValueError):
    """A document that is not acceptable YAML; ``str()`` is one line.

    ``line`` and ``column`` are 1-based when known.
    """

    def __init__(self, reason: str, *, line: int | None = None, column: int | None = None):
        self.reason = reason
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + reason)


class _Refused(yaml.MarkedYAMLError):
    """Raised inside the loader; :func:`load_yaml` turns it into :class:`YamlError`."""

    def __init__(self, problem: str, node_or_mark: Any) -> None:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        super().__init__(problem=problem, problem_mark=mark)


class _CoreResolver(BaseResolver):
    """Only the YAML 1.2 core schema's implicit types (see the module docstring)."""


for _name, _pattern, _first in _CORE_SCALARS:
    _CoreResolver.add_implicit_resolver(
        _TAG + _name, re.compile(f"(?:{_pattern})\\Z"), list(_first)
    )
# An empty plain scalar (`key:` with nothing after it) is null.
_CoreResolver.add_implicit_resolver(_TAG + "null", re.compile(r"\Z"), [""])


class _StrictConstructor(SafeConstructor):
    """The core schema's types only, strictly parsed; duplicate and merge keys refused."""

    yaml_constructors: ClassVar[dict[Any, Any]] = {}  # filled below: core types only

    def construct_undefined(self, node: Node) -> Any:
        raise _Refused(
            f"tag {excerpt(node.tag)} is not allowed; use plain values, lists and mappings",
            node,
        )

    def _number_text(self, node: ScalarNode, pattern: re.Pattern[str], what: str) -> str:
        text = self.construct_scalar(node)
        assert isinstance(text, str)
        if len(text) > MAX_NUMBER_CHARS:
            raise _Refused(f"{what} of {len(text)} characters is too long", node)
        if not pattern.match(text):
            raise _Refused(f"{excerpt(text)} is not a {what} (YAML 1.2 core schema)", node)
        return text

    def construct_core_int(self, node: ScalarNode) -> int:
        return int(self._number_text(node, _INT_RE, "decimal integer"))

    def construct_core_float(self, node: ScalarNode) -> float:
        text = self._number_text(node, _FLOAT_RE, "number").lower()
        if text.endswith(("inf", "nan")):
            return float(text.replace(".", ""))
        return float(text)

    def construct_core_bool(self, node: ScalarNode) -> bool:
        text = str(self.construct_scalar(node))
        if text.lower() not in _BOOLS:
            raise _Refused(f"{excerpt(text)} is not true or false", node)
        return _BOOLS[text.lower()]

    def construct_core_null(self, node: ScalarNode) -> None:
        text = str(self.construct_scalar(node))
        if text not in ("", "~", "null", "Null", "NULL"):
            raise _Refused(f"{excerpt(text)} is not null", node)

    def construct_core_str(self, node: ScalarNode) -> str:
        text = str(self.construct_scalar(node))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Refused(
                f"string holds a lone surrogate {text[exc.start]!r}, which is not Unicode text",
                node,
            ) from None
        return text

    def flatten_mapping(self, node: MappingNode) -> None:
        # Merge keys are YAML 1.1 only; refuse them rather than read "<<" as a name.
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge" or (
                isinstance(key_node, ScalarNode) and key_node.value == "<<" and not key_node.style
            ):
                raise _Refused("merge keys (<<) are not allowed; write each key out", key_node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise _Refused(f"expected a mapping, found a {node.id}", node)
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _Refused("mapping keys must be plain values, not lists or mappings", key_node)
            key = self.construct_object(key_node, deep=deep)
            if key in mapping:
                raise _Refused(
                    f"key {excerpt(key)} given twice (first on line {first_line[key]})", key_node
                )
            first_line[key] = key_node.start_mark.line + 1
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_StrictConstructor.yaml_constructors = {
    _TAG + "null": _StrictConstructor.construct_core_null,
    _TAG + "bool": _StrictConstructor.construct_core_bool,
    _TAG + "int": _StrictConstructor.construct_core_int,
    _TAG + "float": _StrictConstructor.construct_core_float,
    _TAG + "str": _StrictConstructor.construct_core_str,
    _TAG + "seq": SafeConstructor.construct_yaml_seq,
    _TAG + "map": SafeConstructor.construct_yaml_map,
    None: _StrictConstructor.construct_undefined,
}


class _NodeBuilder(Composer, _StrictConstructor, _CoreResolver):
    """Nodes and values from parser events; mixed in before a parser class so
    this Python composer is used even where the C parser offers its own."""

    def _start(self, *, max_depth: int) -> None:
        Composer.__init__(self)
        _StrictConstructor.__init__(self)
        _CoreResolver.__init__(self)
        self.max_depth = max_depth
        self.depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # Aliases and anchors are refused before any node is built, so an
        # alias bomb costs nothing; the depth bound keeps recursion shallow.
        events: Any = self  # the parser half of the loader
        if events.check_event(AliasEvent):
            event = events.get_event()
            raise _Refused(f"aliases (*{excerpt(event.anchor)}) are not allowed", event.start_mark)
        event = events.peek_event()
        if event.anchor is not None:
            raise _Refused(f"anchors (&{excerpt(event.anchor)}) are not allowed", event.start_mark)
        if self.depth >= self.max_depth:
            raise _Refused(f"nested more than {self.max_depth} levels deep", event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _PyLoader(_NodeBuilder, Reader, Scanner, Parser):
    def __init__(self, stream: str, *, max_depth: int) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        self._start(max_depth=max_depth)


_Loader: Callable[..., Any] = _PyLoader
try:  # libyaml's parser makes events about 4x faster; nodes and values stay ours
    from yaml._yaml import CParser

    class _CLoader(_NodeBuilder, CParser):
        def __init__(self, stream: str, *, max_depth: int) -> None:
            CParser.__init__(self, stream)
            self._start(max_depth=max_depth)

    _Loader = _CLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    pass


def _one_line(text: str, limit: int = _PROBLEM_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _yaml_error(exc: yaml.YAMLError) -> YamlError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed document"
        if exc.problem and exc.context and not exc.context.startswith("while"):
            problem = f"{exc.context}, {exc.problem}"  # e.g. "expected a single document ..."
        if mark is None:
            return YamlError(_one_line(problem))
        return YamlError(_one_line(problem), line=mark.line + 1, column=mark.column + 1)
    if isinstance(exc, yaml.reader.ReaderError):
        return YamlError(
            f"character {exc.character!r} at offset {exc.position} is not allowed in YAML "
            "(write control characters as escapes in a double-quoted string)"
        )
    return YamlError(_one_line(str(exc)))


def load_yaml(
    text: str, *, max_bytes: int = MAX_DOCUMENT_BYTES, max_depth: int = MAX_DEPTH
) -> object:
    """The single document in ``text`` as plain Python values (None when it is empty).

    Raises :class:`YamlError` for anything outside the rules in the module
    docstring; ``max_bytes`` bounds the UTF-8 size of ``text``.

    >>> load_yaml("priority: 1:30\\nports: [0x10, 4791]\\nlimit: 1e308")
    {'priority': '1:30', 'ports': ['0x10', 4791], 'limit': 1e+308}
    """
    size = len(text) if len(text) * 4 <= max_bytes else len(text.encode("utf-8", "replace"))
    if size > max_bytes:
        raise YamlError(f"document of {size} bytes is larger than the limit of {max_bytes}")
    try:
        loader = _Loader(text, max_depth=max_depth)  # the reader checks characters here
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None


def read_yaml_text(path: str | Path, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """The text of a UTF-8 file (a byte-order mark is allowed), for :func:`load_yaml`.

    Reads at most ``max_bytes + 1`` bytes, so a huge file costs no memory.
    ``OSError`` from reading propagates; a file too large or not UTF-8 is a
    :class:`YamlError`.
    """
    with open(path, "rb") as handle:
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise YamlError(f"file is larger than the limit of {max_bytes} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlError(f"not UTF-8 text (byte {exc.start})") from None
