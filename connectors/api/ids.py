"""Stable ids: the order hub's global id and the inbox's event key."""
from __future__ import annotations

import hashlib


def global_id(channel: str, external_id: str | int) -> str:
    """``sha256(channel + ":" + external_id)`` as 64 hex chars (UTF-8).

    The spec's dedupe key for orders: the same order pushed twice by the same channel
    gets the same global id; the same number from two channels does not.
    """
    channel = str(channel).strip()
    external_id = str(external_id).strip()
    if not channel or not external_id:
        raise ValueError("global_id needs a non-empty channel and external id")
    return hashlib.sha256(f"{channel}:{external_id}".encode("utf-8")).hexdigest()


def event_key(*parts: object) -> str:
    """sha256 over ``parts`` joined by a unit separator: an idempotency key for events."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
