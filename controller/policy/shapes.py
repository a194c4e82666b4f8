"""Shape checks shared by every document the controller reads (policies, jobs).

Each helper checks one value from a parsed YAML/JSON document and raises
:class:`~controller.errors.InvalidArgument` naming the field, in the same
words for every document kind. They check form only, never meaning.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, NoReturn

from controller.errors import InvalidArgument, excerpt, key_text

__all__ = ["type_name", "check_keys", "as_mapping", "as_list", "as_int", "as_number", "as_str"]


def _fail(field: str, reason: str) -> NoReturn:
    raise InvalidArgument(field, reason)


def type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", str: "string", int: "integer", float: "number"}.get(
        type(value), "list" if isinstance(value, list) else type(value).__name__
    )


def check_keys(doc: Mapping[Any, object], allowed: tuple[str, ...], prefix: str) -> None:
    for key in doc:
        if not isinstance(key, str):
            _fail(f"{prefix}{key_text(key)}", f"keys must be strings, got {type_name(key)}")
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1) if len(key) < 100 else []
            also = f" (did you mean {hint[0]!r}?)" if hint else ""
            _fail(
                f"{prefix}{key_text(key)}",
                f"unknown key{also}; expected one of {', '.join(allowed)}",
            )


def as_mapping(value: object, field: str) -> Mapping[Any, object]:
    if not isinstance(value, Mapping):
        _fail(field, f"must be a mapping, got {type_name(value)}")
    return value


def as_list(value: object, field: str) -> list[object]:
    # A bare string is iterable too; accepting it would split "leaf1" into letters.
    if not isinstance(value, list | tuple):
        _fail(field, f"must be a list, got {type_name(value)}")
    return list(value)


def as_int(value: object, field: str) -> int:
    # bool is a subclass of int in Python; `priority: yes` must not become 1.
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(field, f"must be an integer, got {type_name(value)} {excerpt(value)}")
    return value


def as_number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(field, f"must be a number, got {type_name(value)} {excerpt(value)}")
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float; no limit is that large
        _fail(field, f"{excerpt(value)} is too large")


def as_str(value: object, field: str) -> str:
    if not isinstance(value, str):
        hint = " (quote dpids in YAML so they stay text)" if isinstance(value, int) else ""
        _fail(field, f"must be a string, got {type_name(value)} {excerpt(value)}{hint}")
    return value
