"""Chat commands on a real deployment: type a command in the sandbox's inbox page as a person
would (its reply box, ``POST /inbox/reply``), and follow it to the DAG run it starts and the
room's answer. Used by the deployment test and ``scripts/demo.sh --celery``."""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tests.deployment.harness.servers import wait_for

if TYPE_CHECKING:
    from airflow_provider_imkit.sandbox import ImkitSandbox
    from tests.deployment.harness.deployment import Deployment

COMMAND_DAG = "example_imkit_chat_command"
TARGET_DAG = "example_imkit_sales_daily"
ROOM = "ops-commands"
BOT = "airflow-bot"
#: The example's watcher reads the room every 5 s.
POLL_INTERVAL = 5.0


@dataclass
class Command:
    """One command typed in the room, and what came of it."""

    by: str
    text: str
    message: dict[str, Any]
    #: The room's answer, and the seconds from the command to it (and to the asset event's run).
    answer: str | None = None
    answer_after: float | None = None
    run_queued_after: float | None = None
    #: The run it started (None: refused), its state, and the seconds until it was queued.
    run_id: str | None = None
    run_state: str | None = None
    started_after: float | None = None

    def line(self) -> str:
        """One line for the demo's report."""
        parts = [f"{self.by}: {self.text!r}"]
        if self.run_queued_after is not None:
            parts.append(f"{COMMAND_DAG} run queued {self.run_queued_after:.1f} s after it")
        if self.run_id is not None:
            parts.append(
                f"{TARGET_DAG} run {self.run_id} {self.run_state}, queued after {self.started_after:.1f} s"
            )
        parts.append(
            f"answered after {self.answer_after:.1f} s: {self.answer}" if self.answer else "no answer"
        )
        return "; ".join(parts)


def open_for_commands(deployment: Deployment) -> None:
    """Unpause the command DAG (its asset's watcher starts at the next parse) and its target."""
    for dag_id in (COMMAND_DAG, TARGET_DAG):
        deployment.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})


def watcher_reads(sandbox: ImkitSandbox) -> int:
    """The triggerer's reads of the room so far (the watcher is up once there is one)."""
    path = f"/rooms/{ROOM}/messages/v3"
    return sum(
        1
        for r in sandbox.requests()
        if r["method"] == "GET" and r["path"] == path and "(airflow triggerer)" in (r.get("user_agent") or "")
    )


def type_in_inbox(sandbox: ImkitSandbox, user: str, text: str) -> dict[str, Any]:
    """Post ``text`` as ``user`` through the inbox page's reply box; the stored message."""
    before = {m["_id"] for m in sandbox.received(ROOM)}
    body = urlencode({"room": ROOM, "user": user, "message": text}).encode()
    request = urllib.request.Request(f"{sandbox.url}/inbox/reply", data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=10):
        pass
    (stored,) = [m for m in sandbox.received(ROOM) if m["_id"] not in before]
    return stored


def run_id_for(message: dict[str, Any]) -> str:
    """The example's run id for a command (one message, one run)."""
    return "imkit_chat__" + re.sub(r"[^\w.-]", "_", str(message["_id"]))


def answers_to(sandbox: ImkitSandbox, command: Command) -> list[dict[str, Any]]:
    """The bot's answers to ``command``: they name its run, or quote it (a refusal)."""
    run_id = run_id_for(command.message)
    return [
        m
        for m in sandbox.received(ROOM)
        if m["sender"] == BOT
        and m["createdAtMS"] > command.message["createdAtMS"]
        and f"(asked by {command.by}" in m["message"]
        and (run_id in m["message"] or repr(command.text.strip()) in m["message"])
    ]


def follow(deployment: Deployment, sandbox: ImkitSandbox, command: Command, timeout: float = 240) -> Command:
    """Wait for the command's answer (and its run, if it started one); fill in the figures."""
    typed = command.message["createdAtMS"] / 1000
    wait_for(lambda: answers_to(sandbox, command), f"the answer to {command.text!r}", timeout)
    answer = answers_to(sandbox, command)[0]
    command.answer, command.answer_after = answer["message"], answer["createdAtMS"] / 1000 - typed
    queued = [
        datetime.fromisoformat(run["queued_at"]).timestamp()
        for run in deployment.api("GET", f"/api/v2/dags/{COMMAND_DAG}/dagRuns?limit=100")["dag_runs"]
        if run.get("queued_at") and datetime.fromisoformat(run["queued_at"]).timestamp() >= typed
    ]
    command.run_queued_after = min(queued) - typed if queued else None
    if answer["message"].startswith("Started"):
        command.run_id = run_id_for(command.message)
        path = f"/api/v2/dags/{TARGET_DAG}/dagRuns/{command.run_id}"
        command.run_state = deployment.wait({TARGET_DAG: command.run_id}, timeout=timeout)[TARGET_DAG]
        queued_at = deployment.api("GET", path).get("queued_at")
        if queued_at:
            command.started_after = datetime.fromisoformat(queued_at).timestamp() - typed
    return command


def chat_round(
    deployment: Deployment, sandbox: ImkitSandbox, commands: list[dict[str, str]], *, restart_triggerer: bool
) -> list[Command]:
    """Type each command, and follow it to its answer before the next; with
    ``restart_triggerer``, one more command is typed while the triggerer is down (killed), and
    followed after it is started again."""
    wait_for(lambda: watcher_reads(sandbox) > 0, "the chat command watcher's first read", 240)
    done = []
    for spec in commands:  # one after the other, as people type: see docs/commands.md on bursts
        message = type_in_inbox(sandbox, spec["user"], spec["message"])
        done.append(follow(deployment, sandbox, Command(spec["user"], spec["message"], message)))
    if restart_triggerer:
        deployment.kill("triggerer")
        text = f"rerun {TARGET_DAG}"
        late = Command("alice", text, type_in_inbox(sandbox, "alice", text))
        deployment.restart("triggerer")
        done.append(follow(deployment, sandbox, late))
    wait_for(lambda: all_runs_done(deployment), f"every {COMMAND_DAG} run to end", 240)
    return done


def all_runs_done(deployment: Deployment) -> bool:
    runs = deployment.api("GET", f"/api/v2/dags/{COMMAND_DAG}/dagRuns?limit=100")["dag_runs"]
    return all(run["state"] in ("success", "failed") for run in runs)
