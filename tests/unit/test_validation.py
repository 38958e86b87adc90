from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from airflow_provider_imkit.client import validation
from airflow_provider_imkit.exceptions import ImkitValidationError


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "must be a string"),
        (5, "must be a string"),
        (["ops"], "must be a string"),
        ("", "non-empty"),
        ("   ", "non-empty"),
        (" ops", "whitespace"),
        ("ops\n", "whitespace"),
        ("o\x00ps", "control characters"),
        ("o\u200bps", "control characters"),
    ],
)
def test_identifier_rejects(value: object, problem: str) -> None:
    with pytest.raises(ImkitValidationError, match=problem) as info:
        validation.identifier("room", value)
    assert info.value.field == "room"
    assert "'room'" in str(info.value)


def test_identifier_accepts_unicode_and_punctuation() -> None:
    assert validation.identifier("room", "團隊-ops_1:a.b") == "團隊-ops_1:a.b"


def test_text_allows_newlines_but_not_blank() -> None:
    assert validation.text("message", "line 1\nline 2") == "line 1\nline 2"
    for bad in ("", " \n\t ", None, b"bytes", {"a": 1}):
        with pytest.raises(ImkitValidationError, match="'message'"):
            validation.text("message", bad)


@pytest.mark.parametrize("value", [None, True, False])
def test_optional_bool_accepts(value: bool | None) -> None:
    assert validation.optional_bool("push", value) is value


@pytest.mark.parametrize("value", [0, 1, "true", "False", []])
def test_optional_bool_rejects(value: object) -> None:
    with pytest.raises(ImkitValidationError, match="'push'.*True, False or None"):
        validation.optional_bool("push", value)


def test_user_ids_forms() -> None:
    assert validation.user_ids("mentions", None) is None
    assert validation.user_ids("mentions", []) is None
    assert validation.user_ids("mentions", "alice") == ["alice"]
    assert validation.user_ids("mentions", ["bob", "alice", "bob"]) == ["bob", "alice"]
    assert validation.user_ids("mentions", ("a", "b")) == ["a", "b"]
    assert validation.user_ids("mentions", (u for u in ["x", "y"])) == ["x", "y"]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (5, "mentions"),
        ({"alice": 1}, "mentions"),
        (b"alice", "mentions"),
        (["alice", ""], "mentions[1]"),
        (["alice", ["bob"]], "mentions[1]"),
        (["alice", None], "mentions[1]"),
        ([" alice"], "mentions[0]"),
    ],
)
def test_user_ids_rejects(value: object, field: str) -> None:
    with pytest.raises(ImkitValidationError) as info:
        validation.user_ids("mentions", value)
    assert info.value.field == field


def test_error_quotes_long_values_briefly() -> None:
    with pytest.raises(ImkitValidationError) as info:
        validation.identifier("room", " " + "x" * 500)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice,bob", ["alice", "bob"]),
        ("alice; bob ;carol", ["alice", "bob", "carol"]),
        ('["alice", "bob"]', ["alice", "bob"]),
        ("['alice', 'bob']", ["alice", "bob"]),
        (" [ 'alice' ] ", ["alice"]),
        ("('alice', 'bob')", ["alice", "bob"]),
        ("alice,", ["alice"]),
        ("[]", None),
        ("", None),
        ("小明,😀user", ["小明", "😀user"]),
        ("[123, 456]", ["123", "456"]),
    ],
)
def test_list_fields_accept_what_users_write(value: str, expected: list[str] | None) -> None:
    for field in ("mentions", "rooms", "receivers"):
        assert validation.user_ids(field, value) == expected


@pytest.mark.parametrize(
    ("value", "field", "problem"),
    [
        ("alice bob", "mentions[0]", "not an id"),
        (["alice,bob"], "mentions[0]", "not an id"),
        (["['alice']"], "mentions[0]", "not an id"),
        (['"alice"'], "mentions[0]", "not an id"),
        ("[alice, bob", "mentions[0]", "not an id"),
        ("['alice', ", "mentions[0]", "not an id"),
        ("[alice bob]", "mentions", "cannot be parsed"),
        ('{"a": 1}', "mentions[0]", "not an id"),
        ("[None]", "mentions[0]", "must be a string"),
    ],
)
def test_list_fields_reject_ids_that_cannot_be(value: object, field: str, problem: str) -> None:
    with pytest.raises(ImkitValidationError, match=problem) as info:
        validation.user_ids("mentions", value)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", "hello"),
        (1284, "1284"),
        (12.5, "12.5"),
        (True, "True"),
        (Decimal("3.10"), "3.10"),
        (datetime.date(2026, 1, 2), "2026-01-02"),
        ({"rows": 3, "名": "值"}, '{"rows":3,"名":"值"}'),
        ([1, "a"], '[1,"a"]'),
        (None, None),
        ("", None),
        ("  \n", None),
    ],
)
def test_rendered_text(value: object, expected: str | None) -> None:
    assert validation.rendered_text(value) == expected


def test_rendered_ids_and_mappings() -> None:
    assert validation.rendered_id(1234) == "1234"
    assert validation.rendered_id(True) is True  # not an id: the hook says so
    assert validation.rendered_ids([1, "b"]) == ["1", "b"]
    assert validation.rendered_mapping("{'a': {'$x$': 1}}") == {"a": {"$x$": 1}}
    assert validation.rendered_mapping('{"a": 1}') == {"a": 1}
    assert validation.rendered_mapping("{not a dict") == "{not a dict"
