"""Signature primitives used by the built-in connectors (constant-time comparisons)."""
from __future__ import annotations

import base64
import hashlib
import hmac


def hmac_sha256(key: str | bytes, msg: str | bytes) -> bytes:
    k = key.encode("utf-8") if isinstance(key, str) else key
    m = msg.encode("utf-8") if isinstance(msg, str) else msg
    return hmac.new(k, m, hashlib.sha256).digest()


def hmac_sha256_hex(key, msg) -> str:
    return hmac_sha256(key, msg).hex()


def hmac_sha256_b64(key, msg) -> str:
    return base64.b64encode(hmac_sha256(key, msg)).decode("ascii")


def md5_hex(msg: str | bytes) -> str:
    m = msg.encode("utf-8") if isinstance(msg, str) else msg
    return hashlib.md5(m).hexdigest()  # noqa: S324 - the services' protocols require MD5


def equal(a: str | bytes | None, b: str | bytes | None) -> bool:
    if a is None or b is None:
        return False
    a = a.encode("utf-8") if isinstance(a, str) else a
    b = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(a, b)


def icon(letter: str, color: str) -> str:
    """A tiny inline SVG badge used as the built-ins' icons."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" '
            f'rx="6" fill="{color}"/><text x="16" y="21" font-size="14" text-anchor="middle" '
            f'fill="#fff" font-family="sans-serif">{letter}</text></svg>')
