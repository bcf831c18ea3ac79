"""Generic inbound webhook: any system that can POST JSON and sign it with HMAC-SHA256."""
from .connector import WebhookConnector

__all__ = ["WebhookConnector"]
