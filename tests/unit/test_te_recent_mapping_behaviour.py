"""Recent load as a mapping: its size and its missing keys, bound to a layout or not.

Guards the :class:`~collections.abc.Mapping` face of
:class:`controller.te.recent.RecentLoad`: ``len`` counts every link with a
pending amount (in the slot array and kept aside alike) and agrees with
iteration; looking up a link without one is a ``KeyError`` naming that link.
"""

from __future__ import annotations

import pytest
from synthetic import leaf_spine

from controller.fabric.model import LinkId, PortRef
from controller.routing.layout import build_layout
from controller.te.recent import RecentLoad

FAB = leaf_spine(2, 3)
LINKS = sorted(lid for _, _, lid in FAB.graph.edges(data="link"))
STRAYS = [LinkId(PortRef(77, p), PortRef(78, p)) for p in (1, 2, 3)]  # no layout knows them


@pytest.mark.parametrize("bound", [False, True])
def test_len_counts_every_link_with_a_pending_amount(bound: bool) -> None:
    recent = RecentLoad(visibility_s=10.0)
    if bound:
        recent.bind(build_layout(LINKS, edges=LINKS, switches=FAB.names))
    assert len(recent) == 0
    recent.add([LINKS[0], LINKS[1], STRAYS[0]], 5e6, now=0.0)
    recent.add([LINKS[1], STRAYS[1], STRAYS[2]], -2e6, now=1.0)
    recent.add([LINKS[3]], 1e6, now=2.0, key="f")
    pending = {LINKS[0], LINKS[1], LINKS[3], *STRAYS}
    assert len(recent) == len(pending) == len(list(recent))
    assert set(recent) == pending
    recent.settle("f")  # measured now: its estimate is gone, and so is the link
    assert len(recent) == len(pending) - 1 == len(list(recent))
    recent.expire(10.5)  # the first placement expires: LINKS[0] and STRAYS[0] go
    assert set(recent) == {LINKS[1], STRAYS[1], STRAYS[2]}
    assert len(recent) == 3


@pytest.mark.parametrize("bound", [False, True])
def test_a_link_without_an_amount_is_a_key_error_naming_it(bound: bool) -> None:
    recent = RecentLoad(visibility_s=10.0)
    if bound:
        recent.bind(build_layout(LINKS, edges=LINKS, switches=FAB.names))
    recent.add([LINKS[0], STRAYS[0]], 3e6, now=0.0)
    assert recent[LINKS[0]] == 3e6 and recent[STRAYS[0]] == 3e6
    for missing in (LINKS[2], STRAYS[1]):
        with pytest.raises(KeyError) as err:
            recent[missing]
        assert err.value.args == (missing,)
        assert missing not in recent and recent.get(missing) == 0.0
