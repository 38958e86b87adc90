"""ImkitApprovalTrigger: wait in the triggerer for an approver's reply in an IMKIT room."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_imkit import (
    DEFAULT_CONN_ID,
    version_compat,  # noqa: F401  (makes the errors AirflowExceptions)
)
from airflow_provider_imkit.decisions import ApprovalWait, Question
from airflow_provider_imkit.rooms.budget import DEFAULT_READS_PER_MINUTE, reads_per_minute
from airflow_provider_imkit.rooms.readers import room_readers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_imkit.client import ImkitClient
    from airflow_provider_imkit.hooks.imkit import ImkitHook


def approval_reads_per_minute() -> int:
    """``[imkit] approval_reads_per_minute``: each connection's room reads per minute in one
    triggerer (default 300), shared by every approval wait on it.

    :raises ImkitConfigurationError: the option is not a whole number of at least 1.
    """
    from airflow.providers.common.compat.sdk import conf

    value = conf.get("imkit", "approval_reads_per_minute", fallback=str(DEFAULT_READS_PER_MINUTE))
    return reads_per_minute(value)


class ImkitApprovalTrigger(BaseTrigger):
    """
    Wait for the first counting reply to an approval question in a room (read with
    ``GET /rooms/{room}/messages/v3``), and fire one event: ``chosen`` (option, replier, reply
    id and time), ``timeout``, or ``error`` (the room cannot be read: unknown room, bad key);
    the event carries the question, so the operator decides from what was asked.

    Every wait on the same connection and room in a triggerer shares one reader: one read per
    ``poll_interval`` (the shortest of the waits') however many wait there, from the oldest
    undecided question on. All rooms of a connection share its read budget,
    ``[imkit] approval_reads_per_minute`` (default 300): when the rooms want more, each room's
    interval stretches evenly, and a 429 slows the reads down until they succeed again. Reads
    run in the provider's own small thread pool; the triggerer's event loop never waits on
    IMKIT. Transient read errors (network, 429, 5xx) are retried with backoff; they end the
    wait only when they last until 5 minutes after the deadline (a ``timeout`` with the reason).
    Its state is only the question: after a triggerer restart it reads the room from the
    question again, so a reply given meanwhile still decides and nothing is posted twice.
    The serialized kwargs hold ids and times only; the key stays in the connection.

    :param question: :meth:`Question.to_json` of the posted question.
    :param poll_interval: seconds between reads of the room.
    :param imkit_conn_id: the Airflow connection of type ``imkit``.
    """

    def __init__(
        self,
        *,
        question: dict[str, Any],
        poll_interval: float = 10.0,
        imkit_conn_id: str = DEFAULT_CONN_ID,
    ) -> None:
        super().__init__()
        self.question = question
        self.poll_interval = poll_interval
        self.imkit_conn_id = imkit_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "question": self.question,
                "poll_interval": self.poll_interval,
                "imkit_conn_id": self.imkit_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        wait = ApprovalWait(Question.from_json(self.question), float(self.poll_interval), log=self.log)
        async with room_readers().watch(
            self.imkit_conn_id,
            wait.question.room,
            wait,
            make_client=self._client,
            reads_per_minute=approval_reads_per_minute(),
        ) as outcomes:
            outcome = await outcomes.next()
        self.log.info("Approval in room %s: %s", wait.question.room, outcome.status)
        yield TriggerEvent({**outcome.to_event(), "question": self.question})

    def _client(self) -> ImkitClient:
        """The connection's client (the shared reader calls this once, in its own thread)."""
        return self._hook().get_conn()

    def _hook(self) -> ImkitHook:
        from airflow_provider_imkit.hooks.imkit import ImkitHook

        return ImkitHook(self.imkit_conn_id)
