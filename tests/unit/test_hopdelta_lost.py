"""Next hops moved by links that only go away (``lost_next_hops``), hand-solved."""

from __future__ import annotations

from dataclasses import dataclass

from controller.routing.hopdelta import lost_next_hops


@dataclass
class R:
    ports: tuple[int, ...]


def test_lost_ports_leave_routes_and_a_route_left_without_any_is_searched() -> None:
    wide = (1, 2, 3)
    routes = {
        10: {20: R(wide), 30: R(wide), 40: R((1,)), 50: R((2, 3))},
        11: {20: R((7,)), 40: R((5, 6))},
    }
    got = lost_next_hops({10: {1}, 11: {6}}, {20, 30, 40, 50}, routes.__getitem__, ())
    # 10 -> 40 had only port 1: its distance grows, so 40 is searched (no moves kept
    # for it); 50 never used port 1; 11 -> 20 never used port 6.
    assert got.search == [40]
    assert got.moved == {}
    assert got.moves_of(10, routes[10]) == {20: (2, 3), 30: (2, 3)}
    assert got.moves_of(11, routes[11]) == {}
    # One cut per ports tuple the routes share (none for 10 -> 40's, searched), and
    # the routes sharing it share the one tuple left.
    assert got.cuts == {10: {id(wide): (2, 3)}, 11: {id(routes[11][40].ports): (5,)}}
    moves = got.moves_of(10, routes[10])
    assert moves[20] is moves[30]
    assert got.targets == {20, 30, 50}


def test_an_isolated_switch_loses_its_routes_without_a_search() -> None:
    routes = {9: {20: R((1,)), 30: R((1, 2))}, 10: {20: R((4, 5))}}
    got = lost_next_hops({9: {1, 2}, 10: {5}}, {20, 30}, routes.__getitem__, {9})
    assert got.search == []
    assert got.moved == {9: {20: (), 30: ()}}  # its routes go, destination by destination
    assert got.moves_of(9, routes[9]) == {20: (), 30: ()}
    assert got.moves_of(10, routes[10]) == {20: (4,)}


def test_destinations_not_asked_for_are_left_alone() -> None:
    routes = {10: {20: R((1,)), 30: R((1, 2))}}
    got = lost_next_hops({10: {1}}, {30}, routes.__getitem__, ())
    assert got.search == [] and got.moves_of(10, routes[10]) == {30: (2,)}
