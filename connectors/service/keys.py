"""The credential encryption key of this installation, and key rotation.

Where the keys come from (first that is set wins):

1. ``SECRET_KEYS`` in the platform config (``create_app({"SECRET_KEYS": ...})``), or the
   environment variable ``ZHONGSHU_SECRET_KEYS``: comma-separated Fernet keys, **newest
   first**. Production setups with several machines use this (every node needs the same keys).
2. ``<DATA_DIR>/credential_keys``: generated on first use (mode 0600), one key per line,
   newest first. Good for the single-machine default.

Rotation (re-encrypt every install's credentials under the newest key)::

    from zhongshu.connectors.service.keys import rotate_keys
    rotate_keys(platform)          # key file: adds a new key, re-encrypts, drops the old keys
    rotate_credentials(platform)   # env keys: after putting the new key first in ZHONGSHU_SECRET_KEYS

or on the command line ``zhongshu connectors rotate-keys``.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import select

from zhongshu.connectors.api import CredentialCipher, DecryptionError, generate_key

ENV_VAR = "ZHONGSHU_SECRET_KEYS"
KEY_FILE = "credential_keys"

_lock = threading.Lock()
_ciphers: dict[tuple, CredentialCipher] = {}


def _split(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(k).strip() for k in value if str(k).strip()]
    return [k.strip() for k in str(value or "").replace("\n", ",").split(",") if k.strip()]


def key_file(platform) -> Path:
    return Path(platform.config["DATA_DIR"]) / KEY_FILE


def key_source(platform) -> str:
    """``"config"``, ``"env"`` or ``"file"``: where this installation's keys come from."""
    if _split(platform.config.get("SECRET_KEYS")):
        return "config"
    if _split(os.environ.get(ENV_VAR)):
        return "env"
    return "file"


def _write_key_file(path: Path, keys: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write("\n".join(keys) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_keys(platform) -> list[str]:
    """The keys, newest first (creating the key file on first use)."""
    src = key_source(platform)
    if src == "config":
        return _split(platform.config.get("SECRET_KEYS"))
    if src == "env":
        return _split(os.environ.get(ENV_VAR))
    path = key_file(platform)
    with _lock:
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first
            else:
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    f.write(generate_key() + "\n")
        return _split(path.read_text("ascii"))


def cipher(platform, *, refresh: bool = False) -> CredentialCipher:
    """The platform's :class:`CredentialCipher`. The keys are read on every call (a tiny
    file or an environment variable), so a rotation done by another process or the CLI
    is seen at once; ciphers are cached per key list. ``refresh`` is accepted for
    compatibility and changes nothing."""
    ks = tuple(load_keys(platform))
    c = _ciphers.get(ks)
    if c is None:
        c = CredentialCipher(ks)
        with _lock:
            if len(_ciphers) > 16:
                _ciphers.clear()
            _ciphers[ks] = c
    return c


def rotate_credentials(platform) -> dict:
    """Re-encrypt every install's credentials (all tenants) under the newest key.

    Idempotent and safe to re-run. Returns ``{"installs", "rotated", "failed"}``;
    ``failed`` lists installs whose credentials no configured key can decrypt (their
    credentials must be entered again)."""
    from zhongshu.runtime.models import ConnectorInstall

    c = cipher(platform)
    out = {"installs": 0, "rotated": 0, "failed": []}
    with platform.tenant_session(None, write=True) as s:
        for inst in s.scalars(select(ConnectorInstall).order_by(ConnectorInstall.id)):
            out["installs"] += 1
            if not inst.credentials:
                continue
            try:
                if c.needs_rotation(inst.credentials):
                    inst.credentials = c.rotate(inst.credentials)
                    out["rotated"] += 1
            except DecryptionError:
                out["failed"].append({"tenant_id": inst.tenant_id, "api_name": inst.api_name})
    return out


def rotate_keys(platform, *, new_key: str | None = None, drop_old: bool = True) -> dict:
    """Rotate the key of a key-file installation: put a new key first in
    ``<DATA_DIR>/credential_keys``, re-encrypt all credentials, then (``drop_old``) remove
    the old keys from the file — only if every install could be re-encrypted.

    With keys from ``ZHONGSHU_SECRET_KEYS``/config this cannot edit your environment:
    put the new key first yourself, restart, then call this (or
    :func:`rotate_credentials`), then remove the old key from the variable."""
    src = key_source(platform)
    if src != "file":
        result = rotate_credentials(platform)
        result["key_source"] = src
        result["dropped_keys"] = 0
        return result
    path = key_file(platform)
    old = load_keys(platform)
    key = new_key or generate_key()
    CredentialCipher([key])  # validates the key
    with _lock:
        _write_key_file(path, [key] + [k for k in old if k != key])
    result = rotate_credentials(platform)
    result["key_source"] = src
    result["dropped_keys"] = 0
    if drop_old and not result["failed"]:
        with _lock:
            _write_key_file(path, [key])
        result["dropped_keys"] = len([k for k in old if k != key])
    return result
