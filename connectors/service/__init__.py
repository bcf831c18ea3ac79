"""The platform side of connectors: per-tenant installs, the webhook intake with its
durable inbox, inbox processing into records, scheduled pulls and outbound actions.

Importing this package registers the outbox handlers ``inbox.process`` and
``connector.action`` (and ``connectors.pull`` with the scheduler when it offers
``periodic``). The REST routes live in :mod:`.routes` (imported by the API package).
"""
from . import actions, intake, keys, pulls  # noqa: F401  (handler registration)
from .actions import enqueue_action, execute as execute_action
from .intake import handle_webhook, process_inbox, retry_inbox, store_events
from .keys import cipher, rotate_credentials, rotate_keys
from .pulls import pull_install, run_pulls

__all__ = ["cipher", "enqueue_action", "execute_action", "handle_webhook", "process_inbox", "pull_install",
           "retry_inbox", "rotate_credentials", "rotate_keys", "run_pulls", "store_events"]
