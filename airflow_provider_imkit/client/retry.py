"""The retry policy: which failures are sent again, how long to wait, and what to do when
a request may have taken effect although no success was seen.

IMKIT has no idempotency key for ``POST /messages``, so a resent request whose first attempt
reached the server posts the message twice. Failures therefore fall in three groups:

* certainly not processed: the connection could not be made, 429 (rate limited) and
  503 (unavailable): retried;
* maybe processed ("ambiguous"): read timeout, connection lost after the request was sent,
  500, 502, 504: what happens is the policy's ``on_ambiguous`` choice:

  - ``reconcile`` (default): read the room back (``send_message`` only) and return the
    stored message if it is there, send again only when it is proven absent, and raise the
    ambiguous error when the room cannot be read; other requests are not sent again.
    *The settle rule*: after a failure with no answer from IMKIT itself (read timeout,
    connection lost after sending, 502/504 from a proxy) the server may still be storing
    the message, so absence is proven only by a read-back that starts at least ``settle``
    seconds after the failed attempt ended; the room is read several times inside that
    window (found: returned at once). When the call's deadline ends first, the ambiguous
    error is raised with ``maybe_delivered=True`` and nothing is sent again;
  - ``fail``: never send again; the ambiguous error is raised;
  - ``resend``: send again (at-least-once: may post twice);

* permanent: 4xx other than 429, malformed success bodies, TLS errors: never retried.

One :class:`RetryPolicy` object configures all of this; the hook, the operators and the
notifier take it as ``retry=`` (an ``int`` is the shortcut for ``max_attempts``).
"""

from __future__ import annotations

import ast
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow_provider_imkit.exceptions import ImkitConfigurationError, ImkitError, ImkitRateLimitError

if TYPE_CHECKING:
    from collections.abc import Callable

OnAmbiguous = Literal["reconcile", "fail", "resend"]
ON_AMBIGUOUS_CHOICES: tuple[str, ...] = ("reconcile", "fail", "resend")


@dataclass(frozen=True)
class RetryPolicy:
    """
    When and how a request is sent again.

    :param max_attempts: attempts in all, the first included (1 disables retries). Default 3.
    :param backoff: wait before the first retry, in seconds; doubled for each further retry.
        Default 1.
    :param max_backoff: cap of one backoff wait, in seconds. Default 10.
    :param max_retry_after: the longest wait a 429 may ask for, in seconds (``Retry-After``
        header or ``retryAfter`` body field, whichever is larger). A longer request raises at
        once. Default 60.
    :param on_ambiguous: ``reconcile`` (default), ``fail`` or ``resend``: what to do when a
        request may have taken effect although no success was seen (see the module doc).
    :param jitter: fraction of each backoff wait that is randomised (0 to 1). Default 0.5.
    :param settle: seconds after an ambiguous failure with no answer from IMKIT itself during
        which the server may still store the request: only a read-back that starts this
        long after the failed attempt may prove the message absent (the settle rule, see the
        module doc). Default 10; 0 trusts the first read-back (faster, but a message IMKIT
        stores late is posted twice).
    :param random: a function giving a float in [0, 1) for the jitter (tests inject one);
        not part of the policy's serialized form.
    :raises ImkitConfigurationError: a value is out of range.

    A policy survives Airflow's serializers (a notifier's ``retry`` in a Deadline Alert's
    ``kwargs``, a trigger's kwargs): :meth:`serialize` gives its settings as plain values.
    """

    #: The version of :meth:`serialize`'s form, for Airflow's serde.
    __version__: ClassVar[int] = 1

    max_attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 10.0
    max_retry_after: float = 60.0
    on_ambiguous: OnAmbiguous = "reconcile"
    jitter: float = 0.5
    settle: float = 10.0
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool]] = [
            ("max_attempts", isinstance(self.max_attempts, int) and 1 <= self.max_attempts <= 100),
            ("backoff", _is_number(self.backoff) and self.backoff >= 0),
            ("max_backoff", _is_number(self.max_backoff) and self.max_backoff >= 0),
            ("max_retry_after", _is_number(self.max_retry_after) and self.max_retry_after >= 0),
            ("on_ambiguous", self.on_ambiguous in ON_AMBIGUOUS_CHOICES),
            ("jitter", _is_number(self.jitter) and 0 <= self.jitter <= 1),
            ("settle", _is_number(self.settle) and 0 <= self.settle <= 3600),
        ]
        for name, ok in checks:
            if not ok:
                raise ImkitConfigurationError(
                    f"Invalid IMKIT retry setting {name!r}: {getattr(self, name)!r}"
                    + (
                        f" (choose one of {', '.join(ON_AMBIGUOUS_CHOICES)})"
                        if name == "on_ambiguous"
                        else ""
                    )
                )

    @classmethod
    def from_int(cls, max_attempts: int) -> RetryPolicy:
        """The default policy with ``max_attempts`` attempts (as urllib3's ``Retry.from_int``)."""
        return cls(max_attempts=max_attempts)

    @classmethod
    def coerce(cls, value: RetryPolicy | int | Mapping[str, Any] | str | None) -> RetryPolicy | None:
        """Accept what ``retry=`` parameters take: a policy, an int (attempts), the settings
        as a dict (:meth:`serialize`'s form, e.g. after a round trip through JSON) or None."""
        if value is None or isinstance(value, RetryPolicy):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.from_int(value)
        if isinstance(value, Mapping):
            return cls.deserialize(value, cls.__version__)
        if isinstance(value, str):
            return cls.from_repr(value)
        raise ImkitConfigurationError(
            f"Invalid IMKIT retry setting: expected a RetryPolicy, an int or None, got {value!r}"
        )

    @classmethod
    def from_repr(cls, text: str) -> RetryPolicy:
        """
        The policy whose ``repr`` is ``text`` (``RetryPolicy(max_attempts=2, ...)``): Airflow's
        trigger serializer stores objects it does not know as their ``repr``, so a notifier
        awaited by the triggerer (a Deadline Alert) gets its ``retry`` back as this text.
        Only literal keyword values are read; nothing is evaluated.

        :raises ImkitConfigurationError: the text is not such a ``repr``.
        """
        try:
            node = ast.parse(text.strip(), mode="eval").body
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == cls.__name__
                and not node.args
                and all(keyword.arg for keyword in node.keywords)
            ):
                raise ValueError(text)
            settings = {str(keyword.arg): ast.literal_eval(keyword.value) for keyword in node.keywords}
        except (SyntaxError, ValueError) as exc:
            raise ImkitConfigurationError(
                f"Invalid IMKIT retry setting: expected a RetryPolicy, an int or None, got {text!r}"
            ) from exc
        return cls.deserialize(settings, cls.__version__)

    def serialize(self) -> dict[str, Any]:
        """The settings as plain JSON values (Airflow's serde calls this; the jitter's
        ``random`` function is left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "random"}

    @staticmethod
    def deserialize(data: Mapping[str, Any], version: int) -> RetryPolicy:
        """The policy :meth:`serialize` gave ``data`` for (Airflow's serde calls this).

        :raises ImkitConfigurationError: an unknown setting, or a value out of range.
        """
        known = {f.name for f in fields(RetryPolicy)} - {"random"}
        unknown = sorted(set(data) - known)
        if unknown or int(version) > RetryPolicy.__version__:
            what = unknown or f"version {version}"
            raise ImkitConfigurationError(
                f"Invalid IMKIT retry setting: unknown {what} (known: {sorted(known)})"
            )
        return RetryPolicy(**dict(data))

    def with_overrides(self, **overrides: Any) -> RetryPolicy:
        """Return a copy with the given settings replaced; None values are ignored."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def is_retryable(self, error: BaseException) -> bool:
        """Decide whether a failed attempt may be sent again (attempt limits aside)."""
        if not isinstance(error, ImkitError) or not error.transient:
            return False
        if isinstance(error, ImkitRateLimitError):
            return (error.retry_after or 0.0) <= self.max_retry_after
        return not error.maybe_delivered or self.on_ambiguous == "resend"

    def wait_before(self, retry_number: int, error: BaseException | None) -> float:
        """
        Seconds to wait before retry number ``retry_number`` (1 for the first retry).

        A 429 waits exactly what the server asked for, when it asked; other failures wait
        ``backoff * 2 ** (retry_number - 1)``, capped at ``max_backoff``, of which the
        ``jitter`` fraction is random.
        """
        if isinstance(error, ImkitRateLimitError) and error.retry_after is not None:
            return error.retry_after
        base = min(self.max_backoff, self.backoff * (2 ** max(0, retry_number - 1)))
        return base * (1 - self.jitter) + base * self.jitter * self.random()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
