"""Pages of a list response that always fit the gRPC message limit.

A list RPC's items are ordered by a unique text key (a policy's name). A page
holds at most ``page_size`` items and at most ``max_bytes`` of encoded
items, whichever ends first (but always at least one item, so a listing
progresses). ``next_page_token`` encodes the key of the last item returned;
the next page starts after it, so items added or removed between pages are
never returned twice and the rest are not skipped. Tokens are opaque to
clients (versioned, base64) and a token this server could not have issued is
:class:`InvalidArgument` on ``page_token``. This module knows nothing about
what the items are.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import TypeVar

from controller.errors import InvalidArgument

__all__ = ["Page", "paginate", "encode_token", "decode_token"]

_T = TypeVar("_T")
_M = TypeVar("_M")
_PREFIX = "after:"
# Each item in a repeated message field costs its bytes plus a tag and a length.
_FIELD_OVERHEAD = 6

Page = tuple[list[_M], str]


def encode_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_key}".encode()).decode("ascii")


def decode_token(token: str) -> str:
    """The key after which a page starts; raises :class:`InvalidArgument` for a foreign token."""
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    if not text.startswith(_PREFIX):
        raise InvalidArgument("page_token", "not a page token from this server; start without one")
    return text[len(_PREFIX) :]


def paginate(
    items: Sequence[_T],
    *,
    key: Callable[[_T], str],
    encode: Callable[[_T], _M],
    size: Callable[[_M], int],
    page_size: int,
    page_token: str,
    max_page: int,
    max_bytes: int,
) -> Page[_M]:
    """One page of ``items`` (sorted here by ``key``), encoded, and the next token ("" at the end).

    Only the items of the page (and one more) are encoded. ``page_size`` 0
    means ``max_page``; larger values are capped at it; a negative one is
    :class:`InvalidArgument`. ``size`` is an encoded item's size in bytes.
    """
    if page_size < 0:
        raise InvalidArgument("page_size", f"must be >= 0, got {page_size}")
    limit = min(page_size or max_page, max_page)
    ordered = sorted(items, key=key)
    start = (
        bisect_right([key(item) for item in ordered], decode_token(page_token)) if page_token else 0
    )
    page: list[_M] = []
    used = 0
    for item in ordered[start:]:
        if len(page) >= limit:
            return page, encode_token(key(ordered[start + len(page) - 1]))
        message = encode(item)
        cost = size(message) + _FIELD_OVERHEAD
        if page and used + cost > max_bytes:
            return page, encode_token(key(ordered[start + len(page) - 1]))
        page.append(message)
        used += cost
    return page, ""
