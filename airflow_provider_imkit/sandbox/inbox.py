"""The sandbox's inbox page (GET /): every room and its messages, server-rendered, and a
reply box to post as any user (a person answering an approval question, say)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_imkit.sandbox.app import SandboxApp

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1d2430;background:#f6f7f9}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d9dde3;padding:.4em .6em;text-align:left;vertical-align:top}
th{background:#eef1f5} td.text{white-space:pre-wrap;word-break:break-word}
.mention{background:#fff2b3;border-radius:3px;padding:0 .2em;font-weight:600}
.type{font-family:monospace} .muted{color:#6b7480} .recall{color:#a33;font-style:italic}
form#reply{background:#fff;border:1px solid #d9dde3;padding:.8em;display:flex;gap:.6em;align-items:center}
form#reply input[name=message]{flex:1;padding:.3em}
"""


def _time(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def _text(message: Any) -> str:
    return message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)


def _row(message: dict[str, Any]) -> str:
    mentions = "".join(
        f'<span class="mention">@{escape(str(m))}</span> ' for m in message.get("mentions") or []
    )
    text = escape(_text(message.get("message")))
    if message.get("messageType") == "recall":
        text = '<span class="recall">(recalled)</span>'
    sender = message.get("sender")
    sender_id = sender.get("_id") if isinstance(sender, dict) else sender
    return (
        "<tr>"
        f"<td class=muted>{escape(_time(message.get('messageTimeMS')))}</td>"
        f"<td>{escape(str(sender_id))}</td>"
        f"<td class=type>{escape(str(message.get('messageType')))}</td>"
        f"<td class=text>{text}</td>"
        f"<td>{mentions or '<span class=muted>-</span>'}</td>"
        f"<td>{'yes' if message.get('push', True) else 'no'}</td>"
        f"<td class=muted><code>{escape(str(message.get('_id')))}</code></td>"
        "</tr>"
    )


def _choices(values: list[str], selected: str | None) -> str:
    return "".join(
        f'<option value="{escape(v)}"{" selected" if v == selected else ""}>{escape(v)}</option>'
        for v in values
    )


#: Reload the page every 5 s to show new messages, unless a reply is being typed.
_RELOAD = (
    "<script>setInterval(function(){var box=document.getElementById('reply-message');"
    "if(!box||(!box.value&&document.activeElement!==box)){location.reload();}},5000);</script>"
)


def reply_box(app: SandboxApp, room: str | None = None, user: str | None = None) -> str:
    """The form that posts a reply as a user (``POST /inbox/reply``)."""
    with app.lock:
        rooms, users = sorted(app.rooms), sorted(app.users)
    if not rooms or not users:
        return ""
    return (
        '<form id=reply method=post action="/inbox/reply">'
        f"<label>Room <select name=room id=reply-room>{_choices(rooms, room)}</select></label>"
        f"<label>as <select name=user id=reply-user>{_choices(users, user)}</select></label>"
        "<input name=message id=reply-message placeholder='Type a reply, e.g. Approve or 1' "
        "autocomplete=off required>"
        "<button type=submit id=reply-send>Send</button></form>"
    )


def render_inbox(app: SandboxApp, room: str | None = None, user: str | None = None) -> str:
    """Render every room's messages and the reply box (``room`` and ``user`` preselected)
    as one HTML page; all server data is escaped."""
    rooms = app.received()
    assert isinstance(rooms, dict)
    sections = []
    for room_id in sorted(rooms):
        messages = rooms[room_id]
        rows = "".join(_row(m) for m in messages) or (
            "<tr><td colspan=7 class=muted>no messages yet</td></tr>"
        )
        sections.append(
            f'<h2 id="room-{escape(room_id)}">Room {escape(room_id)} '
            f"<span class=muted>({len(messages)} messages)</span></h2>"
            "<table><tr><th>time</th><th>sender</th><th>type</th><th>message</th><th>mentions</th>"
            f"<th>push</th><th>id</th></tr>{rows}</table>"
        )
    body = "".join(sections) or "<p class=muted>No rooms yet.</p>"
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<title>IMKIT sandbox inbox</title>"
        f"<style>{_STYLE}</style></head><body><h1>IMKIT sandbox inbox</h1>"
        f"{reply_box(app, room, user)}{body}{_RELOAD}</body></html>"
    )
