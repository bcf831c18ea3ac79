"""Shopify: order webhooks (HMAC verified) and Admin REST API order pull (cursor pagination)."""
from .connector import ShopifyConnector, next_page_info, webhook_hmac

__all__ = ["ShopifyConnector", "next_page_info", "webhook_hmac"]
