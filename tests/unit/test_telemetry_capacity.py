"""Link capacity references, configuration errors and precedence."""

from __future__ import annotations

import pytest

from controller.errors import InvalidArgument
from controller.fabric.model import Dpid, LinkId, PortRef
from controller.telemetry.capacity import CapacityConfig, LinkEnd, LinkRef, parse_link_ref

NAMES = {1: "leaf1", 2: "leaf2", 0x65: "spine1", 0x66: "spine-2"}


def names(dpid: Dpid) -> str:
    return NAMES.get(dpid, f"{dpid:016x}")


def link(a: int, ap: int, b: int, bp: int) -> LinkId:
    return LinkId(PortRef(a, ap), PortRef(b, bp))


L1_S1 = link(1, 3, 0x65, 1)  # leaf1/3 -> spine1/1
L1_S1_B = link(1, 4, 0x65, 2)  # a second cable leaf1/4 -> spine1/2
L2_S1 = link(2, 3, 0x65, 2)


# ------------------------------------------------------------------- parsing
def test_parse_switch_pair_and_cable() -> None:
    assert parse_link_ref("leaf1-spine1") == LinkRef(LinkEnd("leaf1"), LinkEnd("spine1"))
    assert parse_link_ref(" leaf1/3-spine1/1 ") == LinkRef(
        LinkEnd("leaf1", 3), LinkEnd("spine1", 1)
    )


def test_parse_dpids_are_normalised_to_lowercase() -> None:
    ref = parse_link_ref("00000000000000AB-leaf1")
    assert ref.a.switch == "00000000000000ab"


def test_parse_hyphenated_names_in_cable_form() -> None:
    ref = parse_link_ref("leaf-1/3-spine-2/1")
    assert ref == LinkRef(LinkEnd("leaf-1", 3), LinkEnd("spine-2", 1))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("leaf1", "not a link reference"),
        ("leaf1-", "not a link reference"),
        ("-spine1", "not a link reference"),
        ("leaf1-leaf1", "itself"),
        ("leaf1/3-leaf1/4", "itself"),
        ("leaf1/x-spine1/1", "not a link reference"),
        ("leaf1/0-spine1/1", "not a link reference"),
        ("leaf1/-1-spine1/1", "not a link reference"),
        (f"leaf1/{0xFFFFFF00}-spine1/1", "not a link reference"),
        ("leaf1/3-spine1", "one end only"),
        ("leaf 1-spine1", "not a link reference"),
        ("leaf-1-spine-1", "ambiguous"),
    ],
)
def test_parse_rejects_malformed_refs(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_link_ref(text, field="drain.link")
    assert exc.value.field == "drain.link"
    assert words in exc.value.reason


def test_ref_matches_both_directions_and_by_dpid() -> None:
    ref = parse_link_ref("spine1-leaf1")
    assert ref.matches(L1_S1, names) and ref.matches(L1_S1.reverse(), names)
    assert ref.matches(L1_S1_B, names)
    assert not ref.matches(L2_S1, names)
    by_dpid = parse_link_ref("0000000000000001/3-0000000000000065/1")
    assert by_dpid.matches(L1_S1, names) and by_dpid.matches(L1_S1.reverse(), names)
    assert not by_dpid.matches(L1_S1_B, names)


# ----------------------------------------------------------------- from_config
def test_from_config_converts_mbps_to_bps() -> None:
    cfg = CapacityConfig.from_config(10, {"leaf1-spine1": 25.5})
    assert cfg.default_bps == 10e6
    assert cfg.overrides[0].capacity_bps == 25.5e6
    assert cfg.overrides[0].text == "leaf1-spine1"


@pytest.mark.parametrize("value", [0, -5, float("nan"), float("inf"), "10", True, None])
def test_from_config_rejects_bad_override_values(value: object) -> None:
    with pytest.raises(InvalidArgument) as exc:
        CapacityConfig.from_config(None, {"leaf1-spine1": value})  # type: ignore[dict-item]
    assert exc.value.field == "link_capacity_overrides.leaf1-spine1"


def test_from_config_rejects_malformed_ref_naming_it() -> None:
    with pytest.raises(InvalidArgument) as exc:
        CapacityConfig.from_config(None, {"leaf1/3-leaf1/4": 10})
    assert exc.value.field == "link_capacity_overrides.leaf1/3-leaf1/4"
    assert "itself" in exc.value.reason


@pytest.mark.parametrize("value", [0, -1.0, float("inf")])
def test_from_config_rejects_bad_default(value: float) -> None:
    with pytest.raises(InvalidArgument) as exc:
        CapacityConfig.from_config(value, {})
    assert exc.value.field == "link_capacity_mbps"


# ----------------------------------------------------------------- precedence
def test_precedence_override_then_default_then_port_speed_then_unknown() -> None:
    with_all = CapacityConfig.from_config(100, {"leaf1-spine1": 20})
    assert with_all.capacity_for(L1_S1, names=names, port_speed_bps=1e9) == 20e6
    assert with_all.capacity_for(L2_S1, names=names, port_speed_bps=1e9) == 100e6
    no_default = CapacityConfig.from_config(None, {"leaf1-spine1": 20})
    assert no_default.capacity_for(L2_S1, names=names, port_speed_bps=1e9) == 1e9
    assert no_default.capacity_for(L2_S1, names=names, port_speed_bps=0.0) == 0.0
    assert no_default.capacity_for(L2_S1.reverse(), names=names, port_speed_bps=0.0) == 0.0


def test_cable_override_beats_switch_pair_override_regardless_of_order() -> None:
    cfg = CapacityConfig.from_config(None, {"leaf1-spine1": 20, "leaf1/4-spine1/2": 40})
    assert cfg.capacity_for(L1_S1, names=names, port_speed_bps=0) == 20e6
    assert cfg.capacity_for(L1_S1_B, names=names, port_speed_bps=0) == 40e6
    assert cfg.capacity_for(L1_S1_B.reverse(), names=names, port_speed_bps=0) == 40e6


def test_first_of_equally_specific_overrides_wins() -> None:
    cfg = CapacityConfig.from_config(None, {"leaf1-spine1": 20, "0000000000000001-spine1": 30})
    assert cfg.capacity_for(L1_S1, names=names, port_speed_bps=0) == 20e6


def test_unmatched_lists_overrides_naming_no_link() -> None:
    cfg = CapacityConfig.from_config(
        None, {"leaf1-spine1": 20, "leaf1/9-spine1/9": 10, "leaf9-spine1": 5}
    )
    links = [L1_S1, L1_S1.reverse(), L2_S1]
    assert cfg.unmatched(links, names) == ["leaf1/9-spine1/9", "leaf9-spine1"]
    assert cfg.unmatched([], names) == ["leaf1-spine1", "leaf1/9-spine1/9", "leaf9-spine1"]


def test_unmatched_reports_the_text_as_configured() -> None:
    cfg = CapacityConfig.from_config(None, {"00000000000000FF-leaf1": 20})
    assert cfg.unmatched([L1_S1], names) == ["00000000000000FF-leaf1"]
