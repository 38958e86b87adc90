"""ImkitSendMessageOperator: post a message to an IMKIT room from a task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_imkit import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from collections.abc import Sequence

    import jinja2
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_imkit.hooks.imkit import ImkitHook

#: A ``message`` ending in one of these (and without whitespace) names a template file.
MESSAGE_TEMPLATE_EXTENSIONS = (".md", ".txt", ".j2", ".jinja2")


class ImkitBaseOperator(BaseOperator):
    """
    Connection and HTTP settings shared by the IMKIT operators.

    :param imkit_conn_id: the Airflow connection of type ``imkit`` (default ``imkit_default``).
    :param timeout: seconds (or ``(connect, read)``) for each HTTP attempt; default from the
        connection (10 s connect, 30 s read).
    :param max_attempts: HTTP attempts per call, the first included; default from the
        connection (3).
    :param retry_on_ambiguous: also retry failures after which the request may already have
        taken effect; default from the connection (False).
    """

    ui_color = "#4f8df7"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | tuple[float, float] | None = None,
        max_attempts: int | None = None,
        retry_on_ambiguous: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.imkit_conn_id = imkit_conn_id
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.retry_on_ambiguous = retry_on_ambiguous

    def get_hook(self) -> ImkitHook:
        """Build the hook for this task's connection and settings."""
        # Imported here, not at the top: DAG files import this module, and requests alone
        # would add ~30 ms to every parse of them.
        from airflow_provider_imkit.hooks.imkit import ImkitHook

        return ImkitHook(
            self.imkit_conn_id,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            retry_on_ambiguous=self.retry_on_ambiguous,
        )


class ImkitSendMessageOperator(ImkitBaseOperator):
    """
    Send a message to an IMKIT room; the stored message object is the task's XCom.

    ``room``, ``sender``, ``message``, ``message_type``, ``mentions`` and ``imkit_conn_id``
    are templated. A ``message`` that ends in ``.md``, ``.txt``, ``.j2`` or ``.jinja2`` and
    contains no whitespace is read as a template file from the DAG's template search path.

    Errors that retrying cannot fix (invalid arguments, bad API key, unknown room or sender,
    rejected request) fail the task at once, without Airflow retries. Transient errors left
    after the hook's own retries (network, 429, 5xx) let Airflow's task retries apply.

    :param room: id of the room to post to.
    :param sender: id of an existing IMKIT user who sends the message.
    :param message: the message text (or a template file name, see above).
    :param message_type: ``text`` (default), ``announcement``, ``image`` or an app-defined type.
    :param push: push-notify room members; None (default) leaves the server's default (true).
    :param skip_total_badge: leave the message out of badge totals; None leaves the server's
        default (false).
    :param mentions: a user id or a list of user ids to notify as mentioned.
    :param imkit_conn_id: the Airflow connection of type ``imkit`` (default ``imkit_default``).
    :param timeout: seconds (or ``(connect, read)``) for each HTTP attempt; default from the
        connection (10 s connect, 30 s read).
    :param max_attempts: HTTP attempts per send, the first included; default from the
        connection (3).
    :param retry_on_ambiguous: also retry failures after which the message may already be
        stored (may post twice); default from the connection (False).
    :param ensure_sender: create or update the ``sender`` user first (``POST /admin/clients``),
        so a bot sender need not exist beforehand.
    :param sender_nickname: the sender's display name, with ``ensure_sender``.
    :param sender_avatar_url: the sender's avatar URL, with ``ensure_sender``.
    """

    template_fields: Sequence[str] = (
        "room",
        "sender",
        "message",
        "message_type",
        "mentions",
        "imkit_conn_id",
    )
    template_ext: Sequence[str] = MESSAGE_TEMPLATE_EXTENSIONS
    template_fields_renderers = {"message": "md"}

    def __init__(
        self,
        *,
        room: str,
        sender: str,
        message: str,
        message_type: str = "text",
        push: bool | None = None,
        skip_total_badge: bool | None = None,
        mentions: str | list[str] | None = None,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | tuple[float, float] | None = None,
        max_attempts: int | None = None,
        retry_on_ambiguous: bool | None = None,
        ensure_sender: bool = False,
        sender_nickname: str | None = None,
        sender_avatar_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            imkit_conn_id=imkit_conn_id,
            timeout=timeout,
            max_attempts=max_attempts,
            retry_on_ambiguous=retry_on_ambiguous,
            **kwargs,
        )
        self.ensure_sender = ensure_sender
        self.sender_nickname = sender_nickname
        self.sender_avatar_url = sender_avatar_url
        self.room = room
        self.sender = sender
        self.message = message
        self.message_type = message_type
        self.push = push
        self.skip_total_badge = skip_total_badge
        self.mentions = mentions

    def render_template(
        self,
        content: Any,
        context: Any,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render like Airflow, except that text with whitespace is never taken for a file name."""
        if (
            isinstance(content, str)
            and content.endswith(tuple(self.template_ext))
            and any(ch.isspace() for ch in content)
        ):
            env = jinja_env or self.get_template_env()
            return self._render(env.from_string(content), context)
        return super().render_template(content, context, jinja_env, seen_oids)

    def resolve_template_files(self) -> None:
        """Read template files at parse time, skipping ``message`` text that merely ends in ``.md``."""
        message = self.message
        if isinstance(message, str) and any(ch.isspace() for ch in message):
            self.message = ""
            try:
                super().resolve_template_files()
            finally:
                self.message = message
        else:
            super().resolve_template_files()

    def execute(self, context: Context) -> dict[str, Any]:
        with self.get_hook() as hook:
            if self.ensure_sender:
                hook.upsert_user(
                    self.sender, nickname=self.sender_nickname, avatar_url=self.sender_avatar_url
                )
            return hook.send_message(
                room=self.room,
                sender=self.sender,
                message=self.message,
                message_type=self.message_type,
                push=self.push,
                skip_total_badge=self.skip_total_badge,
                mentions=self.mentions,
            )


class ImkitBatchSendMessageOperator(ImkitBaseOperator):
    """
    Send one message to many rooms and/or users in one request; the batch result is the XCom.

    IMKIT queues the batch and delivers it shortly after: the result ``{"batchID", "count"}``
    says it was accepted. ``push`` defaults to **false** on this endpoint.

    :param message: the text; ``$name$`` placeholders are replaced per recipient (templated).
    :param rooms: room ids (templated).
    :param receivers: user ids to message directly (templated).
    :param values: per-recipient placeholder values keyed by room or user id, e.g.
        ``{"team-a": {"$team$": "Analytics"}}`` (templated).
    :param sender: id of the sending user; None lets the server choose (templated).
    :param message_type: ``text`` (default) or another type (templated).
    :param push: push-notify recipients; None = server default (false on this endpoint).
    :param skip_total_badge: keep the message out of badge totals; None = server default.
    :param imkit_conn_id: the Airflow connection of type ``imkit`` (templated).
    :param timeout: seconds (or ``(connect, read)``) per HTTP attempt.
    :param max_attempts: HTTP attempts, the first included.
    :param retry_on_ambiguous: also retry failures after which the batch may be queued.
    """

    template_fields: Sequence[str] = (
        "message",
        "rooms",
        "receivers",
        "values",
        "sender",
        "message_type",
        "imkit_conn_id",
    )
    template_fields_renderers = {"message": "md", "values": "json"}

    def __init__(
        self,
        *,
        message: str,
        rooms: str | list[str] | None = None,
        receivers: str | list[str] | None = None,
        values: dict[str, dict[str, Any]] | None = None,
        sender: str | None = None,
        message_type: str = "text",
        push: bool | None = None,
        skip_total_badge: bool | None = None,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | tuple[float, float] | None = None,
        max_attempts: int | None = None,
        retry_on_ambiguous: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            imkit_conn_id=imkit_conn_id,
            timeout=timeout,
            max_attempts=max_attempts,
            retry_on_ambiguous=retry_on_ambiguous,
            **kwargs,
        )
        self.message = message
        self.rooms = rooms
        self.receivers = receivers
        self.values = values
        self.sender = sender
        self.message_type = message_type
        self.push = push
        self.skip_total_badge = skip_total_badge

    def execute(self, context: Context) -> dict[str, Any]:
        with self.get_hook() as hook:
            return hook.send_batch(
                message=self.message,
                rooms=self.rooms,
                receivers=self.receivers,
                values=self.values,
                sender=self.sender,
                message_type=self.message_type,
                push=self.push,
                skip_total_badge=self.skip_total_badge,
            )


class ImkitRecallMessageOperator(ImkitBaseOperator):
    """
    Recall (retract) a sent message; the recalled message object is the XCom.

    :param room: id of the room the message was sent to (templated).
    :param message_id: the message's ``_id`` (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='announce')['_id'] }}"``.
    :param imkit_conn_id: the Airflow connection of type ``imkit`` (templated).
    :param timeout: seconds (or ``(connect, read)``) per HTTP attempt.
    :param max_attempts: HTTP attempts, the first included.
    :param retry_on_ambiguous: also retry failures after which the recall may have happened
        (a recall is idempotent, so this is safe to turn on).
    """

    template_fields: Sequence[str] = ("room", "message_id", "imkit_conn_id")

    def __init__(
        self,
        *,
        room: str,
        message_id: str,
        imkit_conn_id: str = DEFAULT_CONN_ID,
        timeout: float | tuple[float, float] | None = None,
        max_attempts: int | None = None,
        retry_on_ambiguous: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            imkit_conn_id=imkit_conn_id,
            timeout=timeout,
            max_attempts=max_attempts,
            retry_on_ambiguous=retry_on_ambiguous,
            **kwargs,
        )
        self.room = room
        self.message_id = message_id

    def execute(self, context: Context) -> dict[str, Any]:
        with self.get_hook() as hook:
            return hook.recall_message(self.room, self.message_id)
