"""Douyin shop (抖店): signed order message push + open-API token management."""
from .connector import DouyinShopConnector, api_sign, push_sign

__all__ = ["DouyinShopConnector", "api_sign", "push_sign"]
