"""SMS through a generic HTTP SMS gateway with a signed request."""
from .connector import SmsGatewayConnector, canonical_string, sign_params

__all__ = ["SmsGatewayConnector", "canonical_string", "sign_params"]
