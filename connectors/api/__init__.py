"""The connector API: everything a connector (built-in or plugin) and the platform share.

Import from here: ``from zhongshu.connectors.api import Connector, Manifest, ...``.
"""
from .base import (INVENTORY_LEVEL, LOGISTICS_SIGNED, LOGISTICS_UPDATED, ORDER_ADDRESS_CHANGED,
                   ORDER_CREATED, ORDER_PAID, ORDER_STATUS_CHANGED, ORDER_UPDATED, ActionResult,
                   ConnectionResult, Connector, InboundEvent, PullPage, WebhookResponse,
                   apply_defaults, header, load_json, validate_against)
from .errors import (ConfigError, ConnectorError, Decision, PayloadError, PermanentError,
                     RetryableError, SignatureError, UnsupportedOperation, backoff_delay, classify)
from .http import HttpClient, HttpResponse, check_status
from .ids import event_key, global_id
from .manifest import MANIFEST_SCHEMA, ActionSpec, InboundSpec, Manifest, validate_manifest
from .mapping import (MAPPING_SCHEMA, FieldMapping, MappedRecord, MappingError, MappingIssue,
                      apply_mapping, validate_mapping)
from .registry import (BUILTINS, ENTRY_POINT_GROUP, ConnectorInfo, ConnectorRegistry, LoadFailure,
                       UnknownConnector, default_registry)
from .runner import (ExecutionOutcome, WebhookOutcome, pull_pages, receive_webhook, run_action)
from .secrets import CredentialCipher, DecryptionError, generate_key, merge_credentials, redact

__all__ = [n for n in dir() if not n.startswith("_")]
