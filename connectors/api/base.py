"""The :class:`Connector` base class and the values it exchanges with the platform."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Mapping

from jsonschema import Draft202012Validator

from .errors import ConfigError, PayloadError, PermanentError, UnsupportedOperation
from .ids import event_key, global_id
from .manifest import Manifest

# Standard event types shared by connectors, so rules can match on them.
ORDER_CREATED = "order.created"
ORDER_PAID = "order.paid"
ORDER_UPDATED = "order.updated"
ORDER_STATUS_CHANGED = "order.status_changed"
ORDER_ADDRESS_CHANGED = "order.address_changed"
LOGISTICS_UPDATED = "logistics.updated"
LOGISTICS_SIGNED = "logistics.signed"
INVENTORY_LEVEL = "inventory.level"


@dataclass(frozen=True)
class InboundEvent:
    """One business event delivered by a connector (webhook or pull).

    ``external_id`` is the id of the business object in the remote system (order id,
    tracking number, ``"<warehouse>/<sku>"``); together with ``channel`` it gives the
    :attr:`global_id` that the order hub uses to detect duplicate orders.
    ``occurred_at`` is timezone-aware UTC. ``source_id`` is the provider's own
    message/delivery id when there is one.
    """

    event_type: str
    external_id: str
    channel: str
    occurred_at: datetime
    payload: dict
    source_id: str | None = None

    def __post_init__(self):
        if self.occurred_at.tzinfo is None:
            raise ValueError("InboundEvent.occurred_at must be timezone-aware")
        object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(timezone.utc))
        object.__setattr__(self, "external_id", str(self.external_id))

    @property
    def global_id(self) -> str:
        """sha256(channel + ":" + external_id) — the order-level dedupe key of the spec."""
        return global_id(self.channel, self.external_id)

    @property
    def dedupe_key(self) -> str:
        """Event-level idempotency key for the durable inbox: the same delivery twice
        gives the same key; a later event about the same order does not."""
        return event_key(self.channel, self.event_type, self.external_id,
                         self.source_id or self.occurred_at.isoformat())

    def to_dict(self) -> dict:
        return {"event_type": self.event_type, "external_id": self.external_id,
                "channel": self.channel, "occurred_at": self.occurred_at.isoformat(),
                "payload": self.payload, "source_id": self.source_id,
                "global_id": self.global_id, "dedupe_key": self.dedupe_key}

    @classmethod
    def from_dict(cls, d: dict) -> "InboundEvent":
        return cls(event_type=d["event_type"], external_id=d["external_id"], channel=d["channel"],
                   occurred_at=datetime.fromisoformat(d["occurred_at"]), payload=d["payload"],
                   source_id=d.get("source_id"))


@dataclass(frozen=True)
class PullPage:
    """One page of a pull. Persist ``next_cursor`` (JSON-able) only *after* the events
    are stored in the inbox; pass it to the next ``pull``. ``has_more`` says whether
    to call again right away (True) or wait for the next schedule (False)."""

    events: list[InboundEvent]
    next_cursor: Any
    has_more: bool
    errors: list[dict] = field(default_factory=list)  # per-item problems that were skipped


@dataclass(frozen=True)
class ActionResult:
    """Result of :meth:`Connector.execute`. ``output`` matches the action's output_schema.
    ``credentials_update`` (rare: token refresh) must be merged into the stored,
    encrypted credentials by the caller."""

    output: dict
    credentials_update: dict | None = None


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookResponse:
    """What the webhook endpoint answers to the remote service."""

    status: int = 200
    body: bytes = b'{"ok":true}'
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200) -> "WebhookResponse":
        return cls(status=status, body=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def header(headers: Mapping[str, str] | Any, name: str, default: str | None = None) -> str | None:
    """Case-insensitive header lookup on any mapping or list of pairs."""
    if headers is None:
        return default
    if hasattr(headers, "get"):
        v = headers.get(name)
        if v is not None:
            return v
    items = headers.items() if hasattr(headers, "items") else headers
    lname = name.lower()
    for k, v in items:
        if k.lower() == lname:
            return v
    return default


def load_json(body: bytes | str, what: str = "body") -> Any:
    """Parse JSON or raise :class:`PayloadError` with a clear message."""
    try:
        if isinstance(body, bytes):
            body = body.decode("utf-8-sig")
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        snippet = body[:60] if isinstance(body, str) else body[:60]
        raise PayloadError(f"{what} is not valid JSON ({exc}); starts with {snippet!r}",
                           code="invalid_json") from None


def validate_against(schema: dict, data: Any, what: str, error_cls=ConfigError) -> None:
    """Validate ``data``; raise ``error_cls`` naming the first bad path (``what/a/b``)."""
    errors = sorted(Draft202012Validator(schema).iter_errors(data),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        e = errors[0]
        path = "/".join([what, *map(str, e.absolute_path)])
        msgs = ["/".join([what, *map(str, x.absolute_path)]) + ": " + x.message for x in errors]
        if error_cls is ConfigError:
            raise ConfigError(f"{path}: {e.message}", path=path, details={"problems": msgs})
        raise error_cls(f"{path}: {e.message}", code="invalid_input", details={"problems": msgs})


def apply_defaults(schema: dict, data: dict | None) -> dict:
    """Top-level ``default`` values of an object schema filled into a copy of ``data``."""
    out = dict(data or {})
    for key, prop in (schema.get("properties") or {}).items():
        if key not in out and isinstance(prop, dict) and "default" in prop:
            out[key] = prop["default"]
    return out


class Connector:
    """Base class of every connector. Subclasses set :attr:`manifest` and override the
    operations they support; the others raise :class:`UnsupportedOperation`.

    Instances are cheap and stateless: all per-install state comes in as ``config``
    (plain settings), ``credentials`` (decrypted secrets) and ``cursor``. One instance
    may serve many installs and threads.
    """

    manifest: ClassVar[Manifest]

    def __init__(self, *, http=None, timeout: float | None = None):
        from .http import HttpClient
        self.http = http or HttpClient(timeout=timeout or 15.0)

    # -- helpers --------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest.name

    def validate_config(self, config: dict | None, credentials: dict | None = None) -> tuple[dict, dict]:
        """Validate against the manifest schemas; return copies with defaults applied."""
        config = apply_defaults(self.manifest.config_schema, config)
        validate_against(self.manifest.config_schema, config, "config")
        if credentials is not None:
            credentials = apply_defaults(self.manifest.credential_schema, credentials)
            validate_against(self.manifest.credential_schema, credentials, "credentials")
        return config, credentials or {}

    def validate_input(self, action: str, input: dict) -> dict:
        spec = self.manifest.action(action)
        data = apply_defaults(spec.input_schema, input)
        validate_against(spec.input_schema, data, "input", error_cls=PermanentError)
        return data

    def text_formats(self, action: str, input: dict) -> dict[str, str]:
        """Which top-level text fields of ``input`` are in a markup (``"html"``,
        ``"markdown_dingtalk"``, ``"markdown_wecom"``; see :mod:`.textformat`), so that
        whoever renders them as templates escapes the values it puts in. Fields not named
        are plain text. Override when an action sends markup."""
        return {}

    def mappings(self, config: dict | None = None, event_type: str | None = None) -> list:
        """The field mappings for this install: ``config["mappings"]`` (admin-edited) if
        present, else the manifest defaults; filtered by ``event_type`` if given."""
        from .mapping import FieldMapping
        docs = (config or {}).get("mappings") or list(self.manifest.mappings)
        maps = [FieldMapping(d) for d in docs]
        return [m for m in maps if event_type is None or m.matches(event_type)]

    def map_event(self, event: "InboundEvent", config: dict | None = None, *, tz: str = "UTC",
                  select_options: dict | None = None) -> list:
        """Apply this install's mappings to an event → list of MappedRecord (one per table)."""
        return [m.apply(event.payload, tz=tz, select_options=select_options)
                for m in self.mappings(config, event.event_type)]

    # -- the operations ---------------------------------------------------------------
    def test_connection(self, config: dict, credentials: dict) -> ConnectionResult:
        """Check that config + credentials work (a cheap authenticated call). Never
        raises for a failed check: returns ``ConnectionResult(ok=False, ...)``."""
        try:
            self.validate_config(config, credentials)
        except ConfigError as exc:
            return ConnectionResult(False, str(exc))
        return ConnectionResult(True, "configuration is valid (no remote check available)")

    def execute(self, action: str, input: dict, config: dict, credentials: dict, *,
                idempotency_key: str) -> ActionResult:
        """Perform an outbound action. ``idempotency_key`` is stable across retries of
        the same outbox job; pass it to services that deduplicate."""
        raise UnsupportedOperation(f"{self.name} has no outbound actions")

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, config: dict,
                       credentials: dict) -> None:
        """Raise :class:`SignatureError` unless the raw request is authentic."""
        raise UnsupportedOperation(f"{self.name} does not receive webhooks")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, config: dict) -> list[InboundEvent]:
        """Turn a verified webhook into events (possibly none, e.g. a ping).
        Raise :class:`PayloadError` for a body that cannot be understood."""
        raise UnsupportedOperation(f"{self.name} does not receive webhooks")

    def webhook_response(self, events: list[InboundEvent], config: dict) -> WebhookResponse:
        """The acknowledgement to send once events are safely stored in the inbox."""
        return WebhookResponse()

    def webhook_error_response(self, error: Exception, config: dict) -> WebhookResponse:
        """The answer when verification/parsing failed."""
        from .errors import SignatureError
        status = 401 if isinstance(error, SignatureError) else 400
        return WebhookResponse.json({"ok": False, "error": str(error)}, status=status)

    def pull(self, config: dict, credentials: dict, cursor: Any) -> PullPage:
        """Fetch the next page after ``cursor`` (None for the very first pull)."""
        raise UnsupportedOperation(f"{self.name} does not support pulling")
