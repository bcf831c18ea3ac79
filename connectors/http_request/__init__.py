"""Generic outbound HTTP request with a sandboxed Jinja2 body template and optional HMAC signing."""
from .connector import HttpRequestConnector

__all__ = ["HttpRequestConnector"]
