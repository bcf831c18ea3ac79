"""Express tracking, 快递100 protocol: signed real-time query, subscription, signed callback."""
from .connector import Kuaidi100Connector, callback_sign, query_sign

__all__ = ["Kuaidi100Connector", "callback_sign", "query_sign"]
