"""Size limits on API requests, checked before a request reaches the facade.

A request that passes the transport's byte limit can still carry a policy with
thousands of alternatives or a megabyte-long name; those would cost the hub
thread time and end up in the store and in metrics labels. This module walks a
request message generically and rejects the first field over its limit with
:class:`InvalidArgument` naming it in proto field names
(``policy.match[3].src_hosts``). It knows nothing about what the fields mean,
except which ones are names; semantic checks belong to the facade.
"""

from __future__ import annotations

from typing import Any

from controller.errors import InvalidArgument
from controller.policy.limits import MAX_DESCRIPTION_CHARS, MAX_LIST_ENTRIES, MAX_NAME_CHARS

__all__ = ["MAX_NAME_CHARS", "MAX_STRING_CHARS", "MAX_LIST_ENTRIES", "check_limits", "check_name"]

# The longest free-text field of any request is a policy's description.
MAX_STRING_CHARS = MAX_DESCRIPTION_CHARS


def check_name(value: str, *, field: str, required: bool = True) -> None:
    """A name is 1..63 characters (0 allowed when ``required`` is False: no filter)."""
    if not value:
        if required:
            raise InvalidArgument(field, "required")
        return
    if len(value) > MAX_NAME_CHARS:
        raise InvalidArgument(
            field, f"must be at most {MAX_NAME_CHARS} characters, got {len(value)}"
        )


def _check_string(value: str, field: str) -> None:
    if len(value) > MAX_STRING_CHARS:
        raise InvalidArgument(
            field, f"must be at most {MAX_STRING_CHARS} characters, got {len(value)}"
        )


def _check_count(count: int, field: str) -> None:
    if count > MAX_LIST_ENTRIES:
        raise InvalidArgument(field, f"must have at most {MAX_LIST_ENTRIES} entries, got {count}")


def _check_value(fd: Any, value: Any, field: str) -> None:
    if fd.type == fd.TYPE_STRING:
        _check_string(value, field)
    elif fd.type == fd.TYPE_MESSAGE:
        check_limits(value, prefix=f"{field}.")


def check_limits(message: Any, *, prefix: str = "") -> None:
    """Reject the first string over 256 characters or list/map over 64 entries in ``message``."""
    for fd, value in message.ListFields():
        field = f"{prefix}{fd.name}"
        if (
            fd.is_repeated
            and fd.message_type is not None
            and fd.message_type.GetOptions().map_entry
        ):
            _check_count(len(value), field)
            key_fd = fd.message_type.fields_by_name["key"]
            value_fd = fd.message_type.fields_by_name["value"]
            for key in sorted(value):
                # Keys are named the way policy validation names them: weights.spine1
                where = f"{field}.{key}" if len(str(key)) <= MAX_NAME_CHARS else field
                _check_value(key_fd, key, where)
                _check_value(value_fd, value[key], where)
        elif fd.is_repeated:
            _check_count(len(value), field)
            for i, item in enumerate(value):
                _check_value(fd, item, f"{field}[{i}]")
        else:
            _check_value(fd, value, field)
