"""Glue the platform calls: the webhook endpoint, the pull scheduler, the outbox worker.

These functions hold the *ordering rules* that make delivery safe, so the platform's code
stays a thin layer over its tables:

* webhooks: verify → parse → **store events in the inbox** → acknowledge;
* pulls: fetch a page → **store events** → only then save the cursor;
* outbox: execute → success, or :func:`classify` the error into retry / dead letter.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .base import ActionResult, Connector, InboundEvent, WebhookResponse
from .errors import ConnectorError, Decision, PayloadError, SignatureError, classify

log = logging.getLogger("zhongshu.connectors")


@dataclass
class WebhookOutcome:
    ok: bool
    events: list[InboundEvent]
    response: WebhookResponse
    error: Exception | None = None


def receive_webhook(connector: Connector, headers: Mapping[str, str], body: bytes, config: dict,
                    credentials: dict, store: Callable[[list[InboundEvent]], None]) -> WebhookOutcome:
    """Handle one webhook request for one install.

    ``store(events)`` must durably write the events to the inbox (deduplicating on
    ``event.dedupe_key``) and raise if it cannot; then the connector's acknowledgement is
    returned. If ``store`` raises, the exception propagates and the endpoint must answer
    5xx so that the service retries — nothing is lost.
    """
    try:
        connector.verify_webhook(headers, body, config, credentials)
        events = connector.parse_webhook(headers, body, config)
    except (SignatureError, PayloadError, ConnectorError) as exc:
        return WebhookOutcome(False, [], connector.webhook_error_response(exc, config), exc)
    store(events)
    return WebhookOutcome(True, events, connector.webhook_response(events, config))


def pull_pages(connector: Connector, config: dict, credentials: dict, cursor: Any,
               store: Callable[[list[InboundEvent], Any], None], *, max_pages: int = 100) -> Any:
    """Pull until caught up (or ``max_pages``). ``store(events, next_cursor)`` must write
    the events and the cursor in ONE transaction; then a crash at any point resumes
    without duplicates or gaps. Returns the last cursor."""
    for _ in range(max_pages):
        page = connector.pull(config, credentials, cursor)
        store(page.events, page.next_cursor)
        cursor = page.next_cursor
        if not page.has_more:
            break
    return cursor


@dataclass
class ExecutionOutcome:
    ok: bool
    result: ActionResult | None = None
    decision: Decision | None = None
    error: dict = field(default_factory=dict)


def run_action(connector: Connector, action: str, input: dict, config: dict, credentials: dict,
               *, idempotency_key: str) -> ExecutionOutcome:
    """Execute one outbox job and say what to do next (never raises for connector errors)."""
    try:
        result = connector.execute(action, input, config, credentials, idempotency_key=idempotency_key)
        return ExecutionOutcome(True, result)
    except Exception as exc:  # noqa: BLE001 - classified below
        decision = classify(exc)
        if decision.unexpected:
            log.exception("connector %s action %s crashed", connector.name, action)
        err = exc.to_dict() if isinstance(exc, ConnectorError) else {
            "error": type(exc).__name__, "message": str(exc)}
        return ExecutionOutcome(False, None, decision, err)
