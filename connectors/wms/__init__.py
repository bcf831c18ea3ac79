"""Warehouse (WMS) inventory: scheduled keyset-paginated pull of stock levels."""
from .connector import WmsInventoryConnector, wms_sign

__all__ = ["WmsInventoryConnector", "wms_sign"]
