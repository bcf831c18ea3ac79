"""The error contract between connectors and the platform.

Every connector method raises only these (anything else is a bug in the connector and is
classified as ``unexpected`` by :func:`classify`):

* :class:`RetryableError` — the remote side may accept the same call later: network
  failure, timeout, HTTP 5xx, HTTP 429 / rate limiting (``retry_after`` seconds when the
  service said so). The outbox worker retries with backoff.
* :class:`PermanentError` — retrying the same call cannot succeed: HTTP 4xx, a rejected
  request, bad configuration, bad input, a malformed payload. The outbox worker moves the
  job to the dead-letter list; the inbox marks the delivery failed.
* :class:`SignatureError` — an inbound webhook is not authentic. The webhook endpoint
  answers 401 and stores nothing.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


class ConnectorError(Exception):
    """Base class of every error a connector raises on purpose."""

    #: machine-readable code, e.g. ``"http_503"``, ``"dingtalk_310000"``
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = dict(details or {})

    def to_dict(self) -> dict:
        return {"error": type(self).__name__, "message": self.message,
                "code": self.code, "details": self.details}


class RetryableError(ConnectorError):
    """Transient failure: try again later (after ``retry_after`` seconds if given)."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 code: str | None = None, details: dict | None = None):
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["retry_after"] = self.retry_after
        return d


class PermanentError(ConnectorError):
    """Failure that retrying cannot fix (4xx, bad config, bad input)."""


class ConfigError(PermanentError):
    """The install's config or credentials are invalid. ``path`` names the bad field."""

    def __init__(self, message: str, *, path: str = "", code: str | None = "config_invalid",
                 details: dict | None = None):
        super().__init__(message, code=code, details=details)
        self.path = path


class PayloadError(PermanentError):
    """An inbound payload or a remote response could not be understood (garbage JSON, ...)."""


class SignatureError(ConnectorError):
    """An inbound webhook failed authentication (missing/wrong signature, stale timestamp)."""

    code = "signature_invalid"


class UnsupportedOperation(PermanentError):
    """The connector does not offer this operation (e.g. ``pull`` on a push-only service)."""

    code = "unsupported"


@dataclass(frozen=True)
class Decision:
    """What a worker should do with a failed call. ``action`` is one of
    ``"retry"``, ``"dead_letter"``, ``"reject"``."""

    action: str
    retry_after: float | None
    unexpected: bool
    message: str


def classify(exc: BaseException) -> Decision:
    """Map an exception raised by a connector to a worker decision.

    Unknown exceptions are bugs in a connector: they are retried (the worker caps the
    number of attempts and dead-letters afterwards) and flagged ``unexpected``.
    """
    if isinstance(exc, SignatureError):
        return Decision("reject", None, False, str(exc))
    if isinstance(exc, RetryableError):
        return Decision("retry", exc.retry_after, False, str(exc))
    if isinstance(exc, PermanentError):
        return Decision("dead_letter", None, False, str(exc))
    return Decision("retry", None, True, f"{type(exc).__name__}: {exc}")


def backoff_delay(attempt: int, *, retry_after: float | None = None, base: float = 5.0,
                  cap: float = 3600.0, jitter: float = 0.2, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential backoff with
    jitter, never less than the service's ``retry_after``, never more than ``cap``
    (except that ``retry_after`` itself is always honoured)."""
    rng = rng or random
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    delay *= 1 + rng.uniform(-jitter, jitter)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return delay
