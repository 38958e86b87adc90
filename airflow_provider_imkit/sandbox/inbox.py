"""The sandbox's inbox page (GET /): every room and its messages, server-rendered."""

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


def render_inbox(app: SandboxApp) -> str:
    """Render every room's messages as one HTML page; all server data is escaped."""
    rooms = app.received()
    assert isinstance(rooms, dict)
    sections = []
    for room_id in sorted(rooms):
        messages = rooms[room_id]
        rows = "".join(_row(m) for m in messages) or (
            "<tr><td colspan=7 class=muted>no messages yet</td></tr>"
        )
        sections.append(
            f"<h2>Room {escape(room_id)} <span class=muted>({len(messages)} messages)</span></h2>"
            "<table><tr><th>time</th><th>sender</th><th>type</th><th>message</th><th>mentions</th>"
            f"<th>push</th><th>id</th></tr>{rows}</table>"
        )
    body = "".join(sections) or "<p class=muted>No rooms yet.</p>"
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<title>IMKIT sandbox inbox</title>"
        f"<style>{_STYLE}</style></head><body><h1>IMKIT sandbox inbox</h1>{body}</body></html>"
    )
