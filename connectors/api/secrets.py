"""Credentials at rest: Fernet encryption with key rotation, and redaction for display.

Keys are Fernet keys (32 url-safe base64 bytes). A :class:`CredentialCipher` holds a list
of keys, **newest first**: it encrypts with the first and decrypts with any, so rotation is

1. generate a key (:func:`generate_key`), put it first in ``ZHONGSHU_SECRET_KEYS``
   (comma-separated), keep the old ones after it, restart;
2. re-encrypt every stored token with :meth:`CredentialCipher.rotate` (idempotent);
3. drop the old key from the list.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import ConfigError

#: credential names that are masked even without schema hints
SECRET_NAMES = {"password", "passwd", "secret", "app_secret", "client_secret", "api_key",
                "apikey", "api_secret", "access_token", "refresh_token", "token", "key",
                "private_key", "signing_secret", "webhook_url", "authorization", "sign_key",
                "customer_key", "salt"}
MASK = "••••••"


class DecryptionError(ConfigError):
    """The token was not produced by any configured key (or is corrupt)."""


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


class CredentialCipher:
    def __init__(self, keys: Iterable[str | bytes]):
        keys = [k.encode("ascii") if isinstance(k, str) else k for k in keys if k]
        if not keys:
            raise ConfigError("at least one encryption key is required", path="keys")
        try:
            self._fernets = [Fernet(k) for k in keys]
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"invalid Fernet key: {exc}", path="keys") from None
        self._multi = MultiFernet(self._fernets)

    @classmethod
    def from_env(cls, var: str = "ZHONGSHU_SECRET_KEYS") -> "CredentialCipher":
        value = os.environ.get(var, "")
        return cls([k.strip() for k in value.split(",") if k.strip()])

    def encrypt(self, credentials: dict) -> str:
        """Encrypt a credential dict into an opaque ASCII token (safe for a TEXT column)."""
        plain = json.dumps(credentials, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return self._multi.encrypt(plain).decode("ascii")

    def decrypt(self, token: str | bytes) -> dict:
        if isinstance(token, str):
            token = token.encode("ascii")
        try:
            plain = self._multi.decrypt(token)
        except InvalidToken:
            raise DecryptionError("credentials cannot be decrypted with the configured keys "
                                  "(wrong key, key removed too early, or corrupt data)",
                                  code="decrypt_failed") from None
        return json.loads(plain.decode("utf-8"))

    def rotate(self, token: str | bytes) -> str:
        """Re-encrypt ``token`` under the newest key (the original timestamp is kept)."""
        if isinstance(token, str):
            token = token.encode("ascii")
        try:
            return self._multi.rotate(token).decode("ascii")
        except InvalidToken:
            raise DecryptionError("cannot rotate: token not decryptable with any configured key",
                                  code="decrypt_failed") from None

    def needs_rotation(self, token: str | bytes) -> bool:
        """True if the newest key cannot decrypt ``token`` (it was made with an older key)."""
        if isinstance(token, str):
            token = token.encode("ascii")
        try:
            self._fernets[0].decrypt(token)
            return False
        except InvalidToken:
            return True


def secret_fields(schema: dict | None) -> set[str]:
    """Names of properties the schema marks secret (``format: password`` or ``writeOnly``)."""
    out = set()
    for name, prop in ((schema or {}).get("properties") or {}).items():
        if isinstance(prop, dict) and (prop.get("format") == "password" or prop.get("writeOnly")):
            out.add(name)
    return out


def _is_secret_name(name: str) -> bool:
    n = name.lower().replace("-", "_")
    return n in SECRET_NAMES or any(n.endswith("_" + s) for s in ("secret", "password", "token", "key"))


def redact(data: Any, schema: dict | None = None, *, mask: str = MASK) -> Any:
    """Copy of ``data`` with secret values masked, for logs and API responses.

    A value is secret when the schema marks it (``"format": "password"`` or
    ``"writeOnly": true``) or its name is a well-known secret name (password, token,
    app_secret, ``*_key``, ...). Nested dicts and lists are walked; empty values stay
    empty so the UI can show "not set".
    """
    marked = secret_fields(schema)
    props = (schema or {}).get("properties") or {}
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if (k in marked or _is_secret_name(str(k))) and not isinstance(v, (dict, list)):
                out[k] = mask if v not in (None, "") else v
            else:
                out[k] = redact(v, props.get(k) if isinstance(props.get(k), dict) else None, mask=mask)
        return out
    if isinstance(data, list):
        item_schema = (schema or {}).get("items") if isinstance((schema or {}).get("items"), dict) else None
        return [redact(v, item_schema, mask=mask) for v in data]
    return data


def merge_credentials(stored: dict, submitted: dict, *, mask: str = MASK) -> dict:
    """Apply an edit from the admin form: fields left as the mask keep their stored value."""
    out = dict(stored)
    for k, v in submitted.items():
        if v == mask:
            continue
        out[k] = v
    return out
