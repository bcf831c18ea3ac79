"""Configuration: defaults, an optional instance config file, then environment variables.

Order of precedence (last wins): built-in defaults < ``<instance>/config.json`` <
``ZHONGSHU_*`` environment variables < the mapping passed to ``create_app``.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

DEFAULTS = {
    "DATA_DIR": None,  # resolved to ./instance
    "DATABASE_URL": None,  # resolved to sqlite:///<DATA_DIR>/zhongshu.db
    "SECRET_KEY": None,  # generated once and kept in <DATA_DIR>/secret_key
    "TIMEZONE": "Asia/Shanghai",
    "LOCALE": "zh-CN",
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "MAX_BATCH_SIZE": 5000,
    "ATTACHMENT_MAX_BYTES": 50 * 1024 * 1024,
    "SESSION_COOKIE_SECURE": False,
    "RUN_WORKER": True,  # in-process outbox worker on the embedded default
    "RUN_SCHEDULER": True,
    "LOGIN_MAX_ATTEMPTS": 10,  # per 15 minutes, per account+address
    "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": 50,  # per 15 minutes, per address across all accounts
    "RUN_LOG_RETENTION_DAYS": 30,
    "AUTO_INDEX": True,  # build indexes for ad-hoc query shapes that repeat (storage/advisor.py)
    "AUTO_INDEX_MIN_ROWS": 20000,  # ...on tables at least this large
    "SCHEMA_CACHE_TABLES": 2000,  # compiled table schemas kept per process (least recently used out)
    "SCHEMA_CACHE_COLUMNS": 5000,  # ...and their physical columns in all (~8 KB each: ~40 MB; 0 = no column limit)
    "METADATA_CACHE_TENANTS": 200,  # tenants whose derived metadata (rules, lookups) a process keeps
    "PUBLIC_URL": "",  # how users reach this instance (links in messages, webhook URLs); default: the request's host
    "DB_POOL_SIZE": None,  # PostgreSQL connections a process keeps (default 10); deploy/ sets it from the threads
    "DB_MAX_OVERFLOW": None,  # ...and opens beyond that for a moment, closed after use (default 20)
}

ENV_PREFIX = "ZHONGSHU_"
_BOOLS = {"SESSION_COOKIE_SECURE", "RUN_WORKER", "RUN_SCHEDULER", "AUTO_INDEX"}
_INTS = {"AUTO_INDEX_MIN_ROWS", "MAX_CONTENT_LENGTH", "MAX_BATCH_SIZE", "ATTACHMENT_MAX_BYTES", "LOGIN_MAX_ATTEMPTS", "LOGIN_MAX_ATTEMPTS_PER_ADDRESS", "RUN_LOG_RETENTION_DAYS",
         "SCHEMA_CACHE_TABLES", "SCHEMA_CACHE_COLUMNS", "METADATA_CACHE_TENANTS", "DB_POOL_SIZE", "DB_MAX_OVERFLOW"}


def _coerce(key: str, value):
    if key in _BOOLS and isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if key in _INTS and isinstance(value, str):
        return int(value)
    return value


def load_config(overrides: dict | None = None) -> dict:
    cfg = dict(DEFAULTS)
    data_dir = Path(
        (overrides or {}).get("DATA_DIR") or os.environ.get(ENV_PREFIX + "DATA_DIR") or "instance"
    ).resolve()
    file_cfg = data_dir / "config.json"
    if file_cfg.exists():
        cfg.update(json.loads(file_cfg.read_text("utf-8")))
    for key in list(DEFAULTS):
        if ENV_PREFIX + key in os.environ:
            cfg[key] = os.environ[ENV_PREFIX + key]
    cfg.update(overrides or {})
    cfg = {k: _coerce(k, v) for k, v in cfg.items()}
    cfg["DATA_DIR"] = str(data_dir)
    if not cfg["DATABASE_URL"]:
        cfg["DATABASE_URL"] = f"sqlite:///{data_dir / 'zhongshu.db'}"
    if not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = _instance_secret(data_dir)
    return cfg


def _instance_secret(data_dir: Path) -> str:
    """A random key generated on first start and kept in the instance folder (mode 0600)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48), "utf-8")
        path.chmod(0o600)
    return path.read_text("utf-8").strip()
