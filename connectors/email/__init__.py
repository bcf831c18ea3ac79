"""Email over SMTP (STARTTLS, implicit TLS, or plain on loopback)."""
from .connector import EmailConnector, build_message

__all__ = ["EmailConnector", "build_message"]
