"""ImkitApprovalTrigger: wait in the triggerer for an approver's reply in an IMKIT room."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_imkit import (
    DEFAULT_CONN_ID,
    version_compat,  # noqa: F401  (makes the errors AirflowExceptions)
)
from airflow_provider_imkit.decisions import ApprovalWait, Outcome, Question

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_imkit.hooks.imkit import ImkitHook


#: Awaited between reads of the room (tests replace it, so they never really wait).
_sleep = asyncio.sleep


class ImkitApprovalTrigger(BaseTrigger):
    """
    Poll a room (``GET /rooms/{room}/messages/v3``) for the first counting reply to an
    approval question, and fire one event: ``chosen`` (option, replier, reply id and time),
    ``timeout``, or ``error`` (the room cannot be read: unknown room, bad key); the event
    carries the question, so the operator decides from what was asked.

    Transient read errors (network, 429, 5xx) are retried with backoff and never end the wait.
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
        hook = self._hook()
        try:
            while True:
                # The blocking read (connection lookup included) runs in a worker thread, so
                # the triggerer's event loop never waits on IMKIT.
                step = await asyncio.to_thread(lambda: wait.poll(hook.client))
                if isinstance(step, Outcome):
                    self.log.info("Approval in room %s: %s", wait.question.room, step.status)
                    yield TriggerEvent({**step.to_event(), "question": self.question})
                    return
                await _sleep(step)
        finally:
            hook.close()

    def _hook(self) -> ImkitHook:
        from airflow_provider_imkit.hooks.imkit import ImkitHook

        return ImkitHook(self.imkit_conn_id)
