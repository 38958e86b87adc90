"""ImkitApprovalOperator: ask in an IMKIT room, wait for an approver's reply, go on or not."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import SkipMixin

from airflow_provider_imkit import DEFAULT_CONN_ID
from airflow_provider_imkit.exceptions import ImkitError, ImkitValidationError
from airflow_provider_imkit.operators.base import ImkitBaseOperator, is_templated, task_link
from airflow_provider_imkit.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_imkit.client.retry import RetryPolicy
    from airflow_provider_imkit.decisions import Outcome, Question

DEFAULT_TIMEOUT = timedelta(days=1)


def _seconds(field: str, value: Any, *, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ImkitValidationError(field, f"must be a timedelta or a number of seconds >= 0, got {value!r}")
    return float(value)


class ImkitApprovalOperator(ImkitBaseOperator, SkipMixin):
    """
    Ask a question in an IMKIT room and wait, without holding a worker slot, until one of
    the ``approvers`` answers with an option; then go on, skip the downstream tasks, or fail.

    The question (``POST /messages``) shows ``subject``, ``body``, the numbered ``options``,
    "Reply with an option's name or number", the approvers as mentions, how long it waits,
    and the task's link when Airflow knows its base URL. The room is then read
    (``GET /rooms/{room}/messages/v3``, messages after the question) every ``poll_interval``
    seconds: a reply counts when its sender is an approver and its text, trimmed and ignoring
    case, is an option or an option's number. Other users, the question's sender, recalled or
    deleted messages and any other text are ignored; the first counting reply decides. The
    decision is acknowledged in the room (``Approved by alice ("Approve"): <subject>``).

    XCom (``return_value``): ``{"chosen": option, "by": user id or None, "message_id": the
    reply's _id or None, "at_ms": when it was decided (ms since the epoch)}``.

    An option in ``approve_options`` lets the downstream tasks run. Any other option skips
    the tasks directly downstream (later ones follow their trigger rules), as Airflow's
    ``ApprovalOperator`` does, or fails the task with ``fail_on_reject=True``. When nobody
    answers within ``timeout``, ``default_option`` decides and the room is told; without one
    the room is told and the task fails. A task retry finds its earlier question in the room
    and keeps waiting on it rather than asking again.

    :param room: id of the room to ask in (templated).
    :param sender: id of the user who asks, e.g. a bot (templated); its own messages never count.
    :param subject: the question, one line (templated).
    :param body: more text under the subject (templated); default none.
    :param approvers: user ids whose replies count: a list, one id, ``"a,b"`` or a rendered
        list (templated); at least one. They are mentioned in the question.
    :param options: the options, in order (templated); default ``("Approve", "Reject")``.
    :param approve_options: the options that let the pipeline continue; default ``("Approve",)``.
    :param fail_on_reject: fail the task (no Airflow retry) on a non-approving option,
        instead of skipping the downstream tasks; default False.
    :param timeout: how long to wait for a reply: a ``timedelta`` or seconds; default 1 day;
        None waits for ever.
    :param default_option: the option chosen when nobody answered in time; None (default):
        the task fails on timeout.
    :param poll_interval: seconds between reads of the room; default 10.
    :param deferrable: wait in the triggerer (default); False waits in the worker, holding
        its slot.
    :param imkit_conn_id: the Airflow connection of type ``imkit`` (default ``imkit_default``).
    :param retry: a :class:`~airflow_provider_imkit.client.retry.RetryPolicy`, or an int (HTTP
        attempts), for the question and the acknowledgement; default from the connection.
    :raises ImkitValidationError: a bad argument (named), before anything is posted.
    :raises ImkitApprovalRejectedError: a non-approving option with ``fail_on_reject``.
    :raises ImkitApprovalTimeoutError: no counting reply in time and no ``default_option``.
    :raises ImkitApprovalError: the room cannot be read (unknown room, bad key).
    """

    template_fields: Sequence[str] = ("room", "sender", "subject", "body", "approvers", "options")
    template_fields_renderers = {"body": "md"}
    inherits_from_skipmixin = True

    def __init__(
        self,
        *,
        room: str,
        sender: str,
        subject: str,
        body: str | None = None,
        approvers: str | list[str],
        options: Sequence[str] | str = ("Approve", "Reject"),
        approve_options: Sequence[str] | str = ("Approve",),
        fail_on_reject: bool = False,
        timeout: timedelta | float | None = DEFAULT_TIMEOUT,
        default_option: str | None = None,
        poll_interval: float = 10,
        deferrable: bool = True,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        retry: RetryPolicy | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(imkit_conn_id=imkit_conn_id, retry=retry, **kwargs)
        self.room = room
        self.sender = sender
        self.subject = subject
        self.body = body
        self.approvers = approvers
        self.options = options
        self.approve_options = approve_options
        self.fail_on_reject = fail_on_reject
        self.timeout = timeout
        self.default_option = default_option
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        # What can be checked before rendering fails the DAG file's import, not a run.
        _seconds("timeout", timeout, allow_none=True)
        if not _seconds("poll_interval", poll_interval, allow_none=False):
            raise ImkitValidationError("poll_interval", "must be more than 0 seconds")
        if not isinstance(fail_on_reject, bool):
            raise ImkitValidationError("fail_on_reject", f"must be True or False, got {fail_on_reject!r}")
        if not is_templated(options):
            self._choices(options)

    def http_timeout(self) -> None:
        """The connection's HTTP timeouts: ``timeout`` here is how long to wait for a reply."""
        return None

    def _choices(self, options: Any) -> tuple[list[str], list[str], str | None]:
        """The checked options, approving options and default option."""
        from airflow_provider_imkit import decisions as approval

        checked = approval.options_list("options", options)
        approving = approval.pick_options("approve_options", self.approve_options, checked)
        default = None
        if self.default_option is not None:
            (default,) = approval.pick_options("default_option", [self.default_option], checked)
        return checked, approving, default

    # -- asking ---------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        # Imported when the task runs: DAG files import this module, and parses must stay cheap.
        from airflow_provider_imkit import decisions as approval
        from airflow_provider_imkit.client import validation
        from airflow_provider_imkit.exceptions import ImkitValidationError

        options, approving, default = self._choices(validation.rendered_ids(self.options))
        approvers = approval.approvers_list(validation.rendered_ids(self.approvers))
        room = validation.identifier("room", validation.rendered_id(self.room))
        sender = validation.identifier("sender", validation.rendered_id(self.sender))
        if sender in approvers:
            raise ImkitValidationError(
                "approvers",
                f"holds the sender {sender!r}, whose own messages never count: ask as another user",
            )
        subject = validation.rendered_message("subject", self.subject)
        timeout = _seconds("timeout", self.timeout, allow_none=True)
        text = approval.question_text(
            subject=subject,
            body=validation.rendered_text(self.body),
            options=options,
            approvers=approvers,
            timeout_seconds=timeout,
            link=task_link(context),
        )
        draft = approval.Question(
            room=room,
            sender=sender,
            approvers=tuple(approvers),
            options=tuple(options),
            message_id="",
            asked_at_ms=0,
            deadline_ms=None if timeout is None else int(timeout * 1000),
            approve_options=tuple(approving),
            default_option=default,
        )
        asked = self._ask(context, draft, text)
        asked_at = approval.created_ms(asked) or int(time.time() * 1000)
        question = dataclasses.replace(
            draft,
            message_id=str(asked.get("_id")),
            asked_at_ms=asked_at,
            deadline_ms=None if timeout is None else asked_at + int(timeout * 1000),
        )
        self.log.info(
            "Asked in room %s (message %s); waiting for %s", room, question.message_id, ", ".join(approvers)
        )
        if self.deferrable:
            from airflow_provider_imkit.triggers.imkit import ImkitApprovalTrigger

            self.defer(
                trigger=ImkitApprovalTrigger(
                    question=question.to_json(),
                    poll_interval=float(self.poll_interval),
                    imkit_conn_id=self.imkit_conn_id,
                ),
                method_name="execute_complete",
            )
        wait = approval.ApprovalWait(question, float(self.poll_interval), log=self.log)
        with self.get_hook() as hook:
            outcome = wait.run(hook.client)
        return self.execute_complete(context, {**outcome.to_event(), "question": question.to_json()})

    def _ask(self, context: Context, draft: Question, text: str) -> dict[str, Any]:
        """Post the question (``draft``: as asked, its id and times not yet known). A later
        try whose earlier try asked and nothing decided it yet (the worker died while waiting,
        say) waits on that question instead; a decided one is never reused. The look is
        made under the settle rule: an earlier try's post may still be being stored."""
        from airflow_provider_imkit import decisions as approval
        from airflow_provider_imkit.exceptions import ImkitReadBackError
        from airflow_provider_imkit.operators.delivery import earlier_try

        earlier = earlier_try(context)
        decided: set[str] = set()
        if earlier is not None:
            with self.get_hook() as hook:
                try:
                    found = approval.undecided_question(
                        hook.client,
                        draft,
                        text,
                        since_ms=earlier.since_ms,
                        settled_after=earlier.ended_by + hook.settings.retry.settle,
                        seen=decided,
                    )
                except ImkitReadBackError as exc:
                    self.log.warning("Could not look for an earlier try's question (%s): asking again", exc)
                    found = None
            if found is not None:
                self.log.warning(
                    "Earlier try asked in room %s (message %s), undecided: waiting on it",
                    draft.room,
                    found.get("_id"),
                )
                return found
        # Never read back for an earlier try's post here: a decided question of an earlier try
        # has the same text, and taking it for this try's would reuse its answer.
        asked = self.deliver_message(
            {"room": draft.room, "sender": draft.sender, "message": text, "mentions": list(draft.approvers)}
        )
        if str(asked.get("_id")) in decided:
            # The send got no answer and its read-back found the earlier try's decided question:
            # whether this try's question was stored is unknown. Never wait on the old one.
            raise ImkitReadBackError(
                f"IMKIT approval in room {draft.room!r}: the question may or may not have been "
                "posted (no answer from IMKIT, and the room shows only an earlier try's decided "
                "question); a task retry looks again"
            )
        return asked

    # -- deciding -------------------------------------------------------------------------------

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the wait: acknowledge, then go on, skip downstream, or fail. The
        decision follows the question as asked (its options, approving options and default),
        not the templates rendered again on resume."""
        from airflow_provider_imkit import decisions as approval
        from airflow_provider_imkit.client import validation
        from airflow_provider_imkit.exceptions import (
            ImkitApprovalError,
            ImkitApprovalRejectedError,
            ImkitApprovalTimeoutError,
        )

        outcome = approval.Outcome.from_event(event)
        asked = event.get("question") if isinstance(event, dict) else None
        if not isinstance(asked, dict):
            raise ImkitApprovalError(f"IMKIT approval: the trigger's event carries no question: {event!r}")
        question = approval.Question.from_json(asked)
        subject = validation.rendered_message("subject", self.subject)
        if outcome.status == "error":
            raise ImkitApprovalError(
                f"IMKIT approval in room {question.room!r} could not wait: {outcome.error}"
            )
        if outcome.status == "timeout" and outcome.error:
            # The room could not be read around the deadline: a reply made in time may be
            # unread, so no default may decide for the approvers.
            raise ImkitApprovalError(
                f"IMKIT approval in room {question.room!r}: no decision, {outcome.error}"
            )
        if outcome.status == "timeout":
            waited = max(0, (question.deadline_ms or question.asked_at_ms) - question.asked_at_ms) / 1000
            default = question.default_option
            approving = default in question.approve_options
            said = approval.timeout_text(subject, waited, default, approving, question.message_id)
            self._tell(context, question, said)
            if default is None:
                raise ImkitApprovalTimeoutError(
                    f"No approver answered in room {question.room!r} within {approval.human_duration(waited)}"
                )
            result = self._result(approval.Outcome("chosen", chosen=default, at_ms=question.deadline_ms))
        else:
            approving = outcome.chosen in question.approve_options
            said = approval.decision_text(
                subject, str(outcome.chosen), str(outcome.by), approving, question.message_id
            )
            self._tell(context, question, said)
            result = self._result(outcome)
        self.log.info("Approval: %r chosen by %s", result["chosen"], result["by"] or "the timeout default")
        if approving:
            return result
        if self.fail_on_reject:
            raise ImkitApprovalRejectedError(
                f"{result['chosen']!r} chosen by {result['by'] or 'the timeout default'} in room "
                f"{question.room!r}: not approved (fail_on_reject=True)"
            )
        self._skip_downstream(context, result)
        return result

    def _skip_downstream(self, context: Context, result: dict[str, Any]) -> None:
        """Skip the tasks directly downstream, teardowns excepted, as Airflow's ApprovalOperator."""
        tasks = [t for t in self.get_direct_relatives(upstream=False) if not getattr(t, "is_teardown", False)]
        if not tasks:
            return
        ti = context["ti"]
        # Airflow 3 ends the task when skipping (no return value is pushed): push it first.
        ti.xcom_push(key="return_value", value=result)
        self.log.info("Not approved: skipping %s", ", ".join(t.task_id for t in tasks))
        if AIRFLOW_V_3_0_PLUS:
            self.skip(ti=ti, tasks=tasks)
        else:
            dag_run: Any = context["dag_run"]
            self.skip(  # type: ignore[call-arg]
                dag_run=dag_run, execution_date=dag_run.execution_date, tasks=tasks, map_index=ti.map_index
            )

    @staticmethod
    def _result(outcome: Outcome) -> dict[str, Any]:
        return {
            "chosen": outcome.chosen,
            "by": outcome.by,
            "message_id": outcome.message_id,
            "at_ms": outcome.at_ms,
        }

    def _tell(self, context: Context, question: Question, text: str) -> None:
        """Post a short note in the room; a failure is logged, the decision stands. A later try
        (the same question reused) reads back first, from the question on: the note names its
        question, so no other question's note can be taken for it."""
        from airflow_provider_imkit.operators.delivery import EarlierTry, earlier_try

        earlier = earlier_try(context)
        if earlier is not None:
            earlier = EarlierTry(since_ms=question.asked_at_ms, ended_by=earlier.ended_by)
        try:
            self.deliver_message(
                {"room": question.room, "sender": question.sender, "message": text}, earlier=earlier
            )
        except ImkitError as exc:
            self.log.error("IMKIT: could not post the approval's outcome in room %r: %s", question.room, exc)
