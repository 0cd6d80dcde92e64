"""The router as pure data: each rule, and each rule's place in the order (issue 18, item 3)."""

from __future__ import annotations

import itertools

import pytest

from contextpilot.fleet._route import Candidate, Plan, empty_order, plan


def C(name, order, **kw):
    return Candidate(name, order, **kw)


def test_rule_1_only_hosts_that_have_the_model():
    got = plan([C("a", 0), C("b", 1, installed=True), C("c", 2)])
    assert got == Plan(("b",), pull=False)


def test_rule_2_loaded_beats_the_configured_order_and_the_session_and_idleness():
    got = plan([C("a", 0, installed=True, last=True),
                C("b", 1, installed=True, loaded=True, in_flight=3),
                C("c", 2, installed=True)])
    assert got.names == ("b", "a", "c")


def test_rule_3_the_sessions_last_host_beats_idleness_and_order():
    got = plan([C("a", 0, installed=True), C("b", 1, installed=True, last=True, in_flight=2)])
    assert got.names == ("b", "a")


def test_rule_4_fewest_in_flight_beats_order():
    got = plan([C("a", 0, installed=True, in_flight=2), C("b", 1, installed=True, in_flight=1),
                C("c", 2, installed=True, in_flight=1)])
    assert got.names == ("b", "c", "a")


def test_rule_5_configured_order_breaks_ties():
    got = plan([C("c", 2, installed=True), C("a", 0, installed=True), C("b", 1, installed=True)])
    assert got.names == ("a", "b", "c")


def test_a_loaded_host_that_is_full_lets_an_idle_one_go_first():
    full = C("a", 0, installed=True, loaded=True, in_flight=4)
    idle = C("b", 1, installed=True)
    assert plan([full, idle]).names == ("b", "a")
    assert plan([full, idle], busy_after=5).names == ("a", "b")


def test_no_host_has_it_pull_on_the_host_of_rules_3_4_5():
    cands = [C("a", 0, in_flight=1), C("b", 1, in_flight=1, last=True), C("c", 2)]
    assert plan(cands) == Plan(("b", "c", "a"), pull=True)
    assert empty_order([C("a", 0, in_flight=1), C("c", 2)]) == ("c", "a")


def test_no_reachable_host_is_an_empty_plan():
    assert plan([]) == Plan((), pull=False)


def test_a_cloud_model_goes_to_any_reachable_host_by_rules_3_4_5():
    cands = [C("a", 0, loaded=True, in_flight=1), C("b", 1), C("c", 2, last=True, in_flight=5)]
    assert plan(cands, cloud=True) == Plan(("c", "b", "a"), pull=False)


def test_the_host_a_session_just_failed_on_goes_last():
    cands = [C("a", 0, installed=True, loaded=True, avoid=True), C("b", 1, installed=True)]
    assert plan(cands).names == ("b", "a")


@pytest.mark.parametrize("perm", list(itertools.permutations(range(4))))
def test_the_order_of_the_input_never_matters(perm):
    cands = [C("a", 0, installed=True), C("b", 1, installed=True, loaded=True),
             C("c", 2, installed=True, last=True), C("d", 3)]
    assert plan([cands[i] for i in perm]).names == ("b", "c", "a")
