"""The sandbox's room history (GET /rooms/{room}/messages/v3) and post_as, over plain HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_imkit.sandbox import ImkitSandbox
from tests.conftest import API_KEY
from tests.integration.test_sandbox import HEADERS, call

# -- GET /rooms/{room}/messages/v3 ---------------------------------------------------------------

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


class Clock:
    """A settable ``time.time``."""

    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000


def history(sandbox: ImkitSandbox, room: str = "ops", **params: Any) -> requests.Response:
    url = f"{sandbox.url}/rooms/{room}/messages/v3"
    return requests.get(url, params=params, headers=HEADERS, timeout=5)


def ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [m["_id"] for m in response.json()["result"]["data"]]


def test_history_shape_newest_first_and_same_millisecond_order() -> None:
    clock = Clock()
    with ImkitSandbox(api_key=API_KEY, rooms=["ops"], users=["bot", "alice"], clock=clock) as sandbox:
        sandbox.add_user("alice", "Alice")
        first = call(
            sandbox,
            "POST",
            "/messages",
            {"room": "ops", "sender": "bot", "message": "one", "messageType": "text"},
        ).json()["result"]
        second = sandbox.post_as("alice", "ops", "兩 ✅", mentions=["bot"])  # the same millisecond
        clock.ms += 5
        third = sandbox.post_as("bot", "ops", {"card": "three"}, message_type="card")
        response = history(sandbox)
        result = response.json()["result"]
        sandbox.check()
    assert set(result) == {"totalCount", "data", "userDeletedIDs", "inspect"}
    assert result["totalCount"] == 3 and result["userDeletedIDs"] == []
    assert ids(response) == [third["_id"], second["_id"], first["_id"]]
    assert result["data"][1] == {
        "_id": second["_id"],
        "message": "兩 ✅",
        "room": "ops",
        "sender": {
            "_id": "alice",
            "nickname": "Alice",
            "description": "",
            "avatarUrl": "",
            "lastLoginTimeMS": 0,
        },
        "messageType": "text",
        "messageTimeMS": T0,
        "updatedAtMS": T0,
        "createdAtMS": T0,
        "reactions": [],
        "reactionCount": 0,
        "isDeleted": False,
        "mentions": ["bot"],
    }
    assert result["data"][0]["message"] == {"card": "three"} and result["data"][0]["createdAtMS"] == T0 + 5
    assert second["sender"] == "alice" and second["push"] is True  # stored as POST /messages stores


def test_history_filters() -> None:
    clock = Clock()
    with ImkitSandbox(api_key=API_KEY, rooms=["ops"], users=["bot"], clock=clock) as sandbox:
        one, two = (sandbox.post_as("bot", "ops", text)["_id"] for text in ("one", "two"))  # both at T0
        clock.ms += 5
        three = sandbox.post_as("bot", "ops", "three")["_id"]  # T0 + 5
        assert ids(history(sandbox, afterMessage=one)) == [three, two]  # strictly newer
        assert ids(history(sandbox, beforeMessage=three)) == [two, one]  # strictly older
        assert ids(history(sandbox, afterMessage=one, beforeMessage=three)) == [two]
        # afterTime is inclusive: a message stored in the given millisecond is not lost.
        assert ids(history(sandbox, afterTime=str(T0))) == [three, two, one]
        assert ids(history(sandbox, afterTime=str(T0 + 1))) == [three]
        assert ids(history(sandbox, afterTime="2026-01-01T00:00:00.005Z")) == [three]
        assert ids(history(sandbox, afterTime="2026-01-01T08:00:00+08:00")) == [three, two, one]
        assert ids(history(sandbox, afterTime="2026-01-01T00:00:00.006")) == []  # no offset: UTC
        limited = history(sandbox, limit=1)
        assert ids(limited) == [three] and limited.json()["result"]["totalCount"] == 3
        assert history(sandbox, afterMessage=one, limit=1).json()["result"]["totalCount"] == 2

        # A recall moves updatedAt (the default timeRangeField), not createdAt or messageTime.
        clock.ms += 5
        recalled = call(sandbox, "POST", "/rooms/ops/message", {"_id": one, "messageType": "recall"})
        assert recalled.json()["result"]["sender"]["_id"] == "bot"
        after = str(T0 + 6)
        (message,) = history(sandbox, afterTime=after).json()["result"]["data"]
        assert message["_id"] == one and message["messageType"] == "recall" and message["message"] == ""
        assert message["updatedAtMS"] == T0 + 10 and message["createdAtMS"] == T0
        assert ids(history(sandbox, afterTime=after, timeRangeField="updatedAt")) == [one]
        assert ids(history(sandbox, afterTime=after, timeRangeField="createdAt")) == []
        assert ids(history(sandbox, afterTime=after, timeRangeField="messageTime")) == []

        # The clock going back never makes a later message look older.
        clock.ms -= 60_000
        four = sandbox.post_as("bot", "ops", "four")
        assert four["createdAtMS"] == T0 + 10 and ids(history(sandbox, limit=1)) == [four["_id"]]
        sandbox.check()


def test_history_limits_and_errors(sandbox: ImkitSandbox) -> None:
    for n in range(105):
        sandbox.post_as("bot", "ops", f"m{n}")
    default = history(sandbox).json()["result"]
    assert len(default["data"]) == 20 and default["totalCount"] == 105
    assert default["data"][0]["message"] == "m104"
    assert len(history(sandbox, limit=500).json()["result"]["data"]) == 100  # capped
    for params, status, code, name in [
        ({"timeRangeField": "sentAt"}, 400, "INVALID_REQUEST", "timeRangeField"),
        ({"limit": "ten"}, 400, "INVALID_REQUEST", "limit"),
        ({"afterTime": "yesterday"}, 400, "INVALID_REQUEST", "afterTime"),
        ({"afterTime": "²"}, 400, "INVALID_REQUEST", "afterTime"),
        ({"afterMessage": "0" * 24}, 404, "MESSAGE_NOT_FOUND", "0" * 24),
        ({"beforeMessage": "0" * 24}, 404, "MESSAGE_NOT_FOUND", "0" * 24),
    ]:
        response = history(sandbox, **params)
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == (status, code), params
        assert name in error["message"]
    missing = history(sandbox, room="no-such-room")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ROOM_NOT_FOUND"


def test_post_as(sandbox: ImkitSandbox) -> None:
    with pytest.raises(ValueError, match="404 CLIENT_NOT_FOUND"):
        sandbox.post_as("ghost", "ops", "boo")
    with pytest.raises(ValueError, match="404 ROOM_NOT_FOUND"):
        sandbox.post_as("bot", "no-such-room", "hi")
    with pytest.raises(ValueError, match="MISSING_PARAMETER"):
        sandbox.post_as("bot", "ops", "")
    stored = sandbox.post_as("alice", "ops", "reply", push=False)
    assert sandbox.received("ops") == [stored] and stored["push"] is False
    assert sandbox.request_counts() == {}  # not an HTTP request
    with ImkitSandbox(auto_create=True) as auto:
        auto.post_as("someone", "somewhere", "hi")
        assert auto.user("someone")["nickname"] == "someone" and len(auto.received("somewhere")) == 1
