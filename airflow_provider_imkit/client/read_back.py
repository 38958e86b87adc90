"""Reading a room back to learn whether a message was stored (``GET /rooms/{room}/messages/v3``).

IMKIT has no idempotency key: after a send that may or may not have been stored, the only
way to post exactly once is to look. Used by the hook's ``reconcile`` policy and by task
retries. No Airflow in here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from airflow_provider_imkit.client.retry import RetryPolicy
from airflow_provider_imkit.exceptions import ImkitConnectionError, ImkitError, ImkitReadBackError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping


#: How far before the first attempt a read-back looks, for clocks that disagree (ms).
READ_BACK_CLOCK_SKEW_MS = 30_000
#: Read-back pages (newest first) before giving up, and messages per page.
READ_BACK_PAGES, READ_BACK_PAGE_SIZE = 5, 100
#: Reading is safe to repeat: one retry, short wait, also after ambiguous failures.
READ_POLICY = RetryPolicy(max_attempts=2, backoff=0.2, on_ambiguous="resend")


class NotFound:
    """What a ``reconcile`` function returns when it proved the request had no effect."""


#: The single value of :class:`NotFound`.
NOT_FOUND = NotFound()


class Unsettled:
    """What read_back returns when the deadline ended inside the settle window."""


#: The single value of :class:`Unsettled`.
UNSETTLED = Unsettled()


def no_answer_from_server(error: ImkitError) -> bool:
    """Whether an ambiguous failure had no answer from IMKIT itself (read timeout, connection
    lost after sending, a proxy's 502 or 504, a 500 without IMKIT's envelope, i.e. a
    gateway's page): the server may still be storing the request."""
    if isinstance(error, ImkitConnectionError):
        return True
    status = getattr(error, "status_code", None)
    if status == 500:
        return getattr(error, "rc", None) is None and getattr(error, "code", None) is None
    return status in (502, 504)


class ImkitClient(Protocol):
    """What reading back needs of a client (:class:`~airflow_provider_imkit.client.ImkitClient`)."""

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = ...,
        retry: RetryPolicy | None = ...,
        subject: dict[str, str] | None = ...,
        until: float | None = ...,
    ) -> Any: ...

    def read_back(
        self, read: Callable[[], Any], *, settled_after: float, until: float | None = None
    ) -> Any: ...


def message_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`find_message` arguments that identify a ``POST /messages`` body."""
    return {
        "room": body["room"],
        "sender": body["sender"],
        "message": body["message"],
        "message_type": body["messageType"],
        "mentions": body.get("mentions"),
    }


def room_messages(
    client: ImkitClient,
    room: str,
    *,
    since_ms: int,
    until: float | None = None,
    pages: int = READ_BACK_PAGES,
    what: str = "since the send began; cannot prove the message absent",
    retry: RetryPolicy = READ_POLICY,
) -> Iterator[dict[str, Any]]:
    """
    Every message of ``room`` created at or after ``since_ms``, newest first, read page by page
    (``GET /rooms/{room}/messages/v3``, ``timeRangeField=createdAt``) until the room says there
    are no more. ``until`` (a ``time.monotonic()`` value) bounds each request; ``retry`` is
    each page's policy (default: one quick retry, also after an ambiguous failure).

    :raises ImkitReadBackError: an answer without a message list, a message without an
        ``_id`` to page on, or more than ``pages * READ_BACK_PAGE_SIZE`` messages (the error
        ends with ``what``).
    :raises ImkitError: the room could not be read.
    """
    path = f"/rooms/{quote(room, safe='')}/messages/v3"
    # ``since_ms - 1``: the same messages whether the server's afterTime is inclusive or not.
    params: dict[str, Any] = {
        "afterTime": max(0, since_ms - 1),
        "timeRangeField": "createdAt",
        "limit": READ_BACK_PAGE_SIZE,
    }
    for _ in range(pages):
        page = client.request("GET", path, params=params, retry=retry, subject={"room": room}, until=until)
        data, total = page.get("data"), page.get("totalCount")
        if not isinstance(data, list):
            raise ImkitReadBackError(f"IMKIT GET {path}: the answer holds no message list")
        yield from (item for item in data if isinstance(item, dict))
        # The end: an empty page, a page holding all the count says is left, or (no count
        # given) a short page. Whether ``totalCount`` counts the messages before
        # ``beforeMessage`` or all of them, a page never ends the reading too early; a server
        # that caps ``limit`` below ours is paged on while it says there is more.
        if not data or (len(data) >= total if isinstance(total, int) else len(data) < READ_BACK_PAGE_SIZE):
            return
        if not isinstance(data[-1], dict) or not data[-1].get("_id"):
            raise ImkitReadBackError(f"IMKIT GET {path}: cannot page on: a message without an _id")
        params["beforeMessage"] = data[-1]["_id"]
    raise ImkitReadBackError(f"IMKIT GET {path}: more than {pages * READ_BACK_PAGE_SIZE} messages {what}")


def find_message(
    client: ImkitClient,
    *,
    room: str,
    sender: str,
    message: str,
    message_type: str,
    mentions: Iterable[str] | None,
    since_ms: int,
    until: float | None = None,
    settled_after: float | None = None,
) -> dict[str, Any] | None:
    """
    The newest message of ``room`` from ``sender`` with this type, text and mentions, created
    at or after ``since_ms``; None when the room proves there is none. ``until`` (a
    ``time.monotonic()`` value) bounds the reading, e.g. by the deadline of the send.
    ``settled_after`` (the client's clock, seconds): IMKIT may still be storing the message
    until then (the settle rule), so while nothing is found the room is read again until a
    read starts at or after it (:meth:`ImkitClient.read_back`); None: one read decides.

    :raises ImkitReadBackError: more than ``READ_BACK_PAGES * READ_BACK_PAGE_SIZE`` messages
        since ``since_ms``: absence cannot be proven.
    :raises ImkitError: the room could not be read.
    """
    want = {"room": room, "sender": sender, "message": message, "message_type": message_type}
    want_mentions = sorted(mentions or [])

    def read() -> Any:
        for item in room_messages(client, room, since_ms=since_ms, until=until):
            if same_message(item, want, want_mentions, since_ms):
                return item
        return NOT_FOUND

    found = read() if settled_after is None else client.read_back(read, settled_after=settled_after)
    return None if found is NOT_FOUND else found


#: Messages this process stored through the provider (ids, the newest few thousand): a message
#: watch never fires for them, even when their sender is one it listens to.
_OWN_POSTS: dict[str, None] = {}
_OWN_POSTS_KEPT = 4096


def remember_own_post(message_id: Any) -> None:
    """Note a message the provider stored (the client calls this for every send)."""
    if isinstance(message_id, str) and message_id:
        _OWN_POSTS[message_id] = None
        while len(_OWN_POSTS) > _OWN_POSTS_KEPT:
            del _OWN_POSTS[next(iter(_OWN_POSTS))]


def is_own_post(message_id: Any) -> bool:
    """Whether this process stored the message through the provider."""
    return isinstance(message_id, str) and message_id in _OWN_POSTS


def sender_id(item: Mapping[str, Any]) -> Any:
    """A listed message's sender id: the history shows a user object, ``POST`` results an id."""
    sender = item.get("sender")
    return sender.get("_id") if isinstance(sender, dict) else sender


def created_ms(item: Mapping[str, Any]) -> int | None:
    """A listed message's creation time (ms), else its message time, else None."""
    for name in ("createdAtMS", "messageTimeMS"):
        value = item.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


def same_message(
    item: Mapping[str, Any], want: Mapping[str, Any], mentions: list[str], since_ms: int
) -> bool:
    """Whether a listed message is the one sent: sender (id or user object), text, type, room,
    not deleted, created since ``since_ms``, and the same mentions where the server lists them."""
    created = item.get("createdAtMS")
    return (
        sender_id(item) == want["sender"]
        and item.get("message") == want["message"]
        and item.get("messageType") == want["message_type"]
        and item.get("room", want["room"]) == want["room"]
        and not item.get("isDeleted")
        and (not isinstance(created, int | float) or created >= since_ms)
        and ("mentions" not in item or sorted(item.get("mentions") or []) == mentions)
    )
