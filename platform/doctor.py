"""``zhongshu doctor``: checks a deployment's configuration and connectivity.

Each check yields ``(level, name, message)`` with level ``OK``, ``WARN`` or ``FAIL``; the
command prints one line per check and exits 1 when any check failed. Checks never change
anything (the data folder check writes and removes a probe file).

    OK    config.secret_key      set (from ZHONGSHU_SECRET_KEY or config.json)
    FAIL  database.migrations    at 0007, head is 0009: run `zhongshu migrate`
"""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

OK, WARN, FAIL = "OK", "WARN", "FAIL"

#: thresholds (seconds / counts) of the outbox and worker checks
OLDEST_PENDING_WARN, OLDEST_PENDING_FAIL = 60, 900
DEAD_WARN = 1


def _check_config(cfg: dict) -> Iterator[tuple[str, str, str]]:
    secret_file = Path(cfg["DATA_DIR"]) / "secret_key"
    if os.environ.get("ZHONGSHU_SECRET_KEY"):
        yield OK, "config.secret_key", "set from ZHONGSHU_SECRET_KEY"
    elif secret_file.exists() and secret_file.read_text("utf-8").strip() == cfg["SECRET_KEY"]:
        yield WARN, "config.secret_key", (f"generated and kept in {secret_file}: on several web nodes set the same "
                                          "ZHONGSHU_SECRET_KEY on each (sessions are signed with it)")
    elif len(str(cfg.get("SECRET_KEY") or "")) < 16:
        yield FAIL, "config.secret_key", "shorter than 16 characters"
    else:
        yield OK, "config.secret_key", "set"
    url = str(cfg["DATABASE_URL"])
    if url.startswith("sqlite"):
        yield WARN, "config.database_url", "SQLite: fine for one machine; use PostgreSQL for several nodes"
    elif url.startswith("postgresql"):
        yield OK, "config.database_url", "PostgreSQL"
    else:
        yield FAIL, "config.database_url", f"unsupported database URL scheme {url.split(':', 1)[0]!r}"
    try:
        ZoneInfo(cfg["TIMEZONE"])
        yield OK, "config.timezone", cfg["TIMEZONE"]
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        yield FAIL, "config.timezone", f"unknown time zone {cfg['TIMEZONE']!r}"
    data = Path(cfg["DATA_DIR"])
    try:
        data.mkdir(parents=True, exist_ok=True)
        probe = data / f".doctor-{uuid.uuid4().hex}"
        probe.write_text("ok", "utf-8")
        probe.unlink()
        yield OK, "config.data_dir", f"{data} is writable"
    except OSError as e:
        yield FAIL, "config.data_dir", f"{data} is not writable: {e}"


def _check_database(zs) -> Iterator[tuple[str, str, str]]:
    from sqlalchemy import text

    try:
        with zs.engine.connect() as conn:
            version = conn.execute(text("select version()" if zs.dialect == "postgresql"
                                        else "select sqlite_version()")).scalar()
        yield OK, "database.reachable", str(version).split(" on ")[0]
    except Exception as e:  # noqa: BLE001
        yield FAIL, "database.reachable", f"{type(e).__name__}: {str(e).splitlines()[0]}"
        return
    try:
        from alembic.script import ScriptDirectory

        from .migrations import alembic_config, current

        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        cur = current(zs.engine)
        if cur in heads:
            yield OK, "database.migrations", f"at head {cur}"
        else:
            yield FAIL, "database.migrations", f"at {cur or 'nothing'}, head is {', '.join(sorted(heads))}: run `zhongshu migrate`"
    except Exception as e:  # noqa: BLE001
        yield FAIL, "database.migrations", f"cannot read the revision: {e}"


def _tcp(host: str, port: int, timeout: float = 2.0) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return str(e)


def _check_broker(cfg: dict) -> Iterator[tuple[str, str, str]]:
    url = cfg.get("BROKER_URL") or os.environ.get("ZHONGSHU_BROKER_URL")
    if not url:
        yield OK, "broker", "not configured (outbox workers poll the database)"
        return
    p = urlparse(url)
    safe = f"{p.scheme}://{p.hostname}:{p.port or ''}{p.path}"
    try:
        from kombu import Connection

        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        yield OK, "broker", f"{safe} reachable"
    except ImportError:
        problem = _tcp(p.hostname or "127.0.0.1", p.port or (6379 if p.scheme.startswith("redis") else 5672))
        yield (FAIL, "broker", f"{safe}: {problem}") if problem else (OK, "broker", f"{safe} accepts connections")
    except Exception as e:  # noqa: BLE001
        yield FAIL, "broker", f"{safe} unreachable: {type(e).__name__}: {e}"


def _check_runtime(zs) -> Iterator[tuple[str, str, str]]:
    from sqlalchemy import func, select

    from zhongshu.platform.models import utcnow
    from zhongshu.runtime.models import OutboxJob, SchedulerLease

    now = utcnow()
    try:
        with zs.engine.connect() as conn:
            lease = conn.execute(select(SchedulerLease).where(SchedulerLease.name == "main")).first()
            O = OutboxJob.__table__.c
            oldest = conn.execute(select(func.min(O.run_at)).where(O.status == "pending", O.run_at <= now)).scalar()
            due = conn.execute(select(func.count()).where(O.status == "pending", O.run_at <= now)).scalar()
            dead = conn.execute(select(func.count()).where(O.status == "dead")).scalar()
            last_done = conn.execute(select(func.max(O.finished_at)).where(O.status == "done")).scalar()
            running = conn.execute(select(func.count()).where(O.status == "running", O.locked_until >= now)).scalar()
    except Exception as e:  # noqa: BLE001
        yield FAIL, "runtime", f"cannot read the runtime tables: {e}"
        return
    if lease is None or not lease.holder:
        yield (WARN if zs.config.get("RUN_SCHEDULER") else FAIL), "scheduler.leader", \
            "no scheduler holds the lease: run `zhongshu scheduler` on one or more nodes"
    elif lease.expires_at < now:
        ago = (now - lease.expires_at).total_seconds()
        yield FAIL, "scheduler.leader", f"the lease of {lease.holder} expired {ago:.0f} s ago: no scheduler is running"
    else:
        yield OK, "scheduler.leader", f"{lease.holder}, renewed (expires in {(lease.expires_at - now).total_seconds():.0f} s)"
    age = (now - oldest).total_seconds() if oldest else 0.0
    activity = f"; last job finished {(now - last_done).total_seconds():.0f} s ago" if last_done else ""
    line = f"{due} due, oldest waiting {age:.0f} s, {running} running{activity}"
    if age >= OLDEST_PENDING_FAIL:
        yield FAIL, "outbox.lag", line + ": are workers (and the relay) running?"
    elif age >= OLDEST_PENDING_WARN:
        yield WARN, "outbox.lag", line + ": workers are behind"
    else:
        yield OK, "outbox.lag", line
    if dead >= DEAD_WARN:
        yield WARN, "outbox.dead_letters", f"{dead} dead letters: review and replay them (admin API /outbox?status=dead)"
    else:
        yield OK, "outbox.dead_letters", "none"


def run_checks(config: dict | None = None) -> list[tuple[str, str, str]]:
    from .config import load_config
    from .core import Platform

    cfg = load_config(config)
    out = list(_check_config(cfg))
    try:
        zs = Platform(cfg)
    except Exception as e:  # noqa: BLE001
        out.append((FAIL, "database.engine", f"cannot create the engine: {e}"))
        return out
    try:
        db = list(_check_database(zs))
        out += db
        out += list(_check_broker(cfg))
        if all(level != FAIL for level, _, _ in db):
            out += list(_check_runtime(zs))
    finally:
        zs.engine.dispose()
    return out


def report(checks) -> tuple[str, int]:
    lines = [f"{level:<5} {name:<22} {msg}" for level, name, msg in checks]
    failed = sum(1 for level, _, _ in checks if level == FAIL)
    warned = sum(1 for level, _, _ in checks if level == WARN)
    lines.append(f"{'FAIL' if failed else 'OK'}: {len(checks)} checks, {failed} failed, {warned} warnings")
    return "\n".join(lines), (1 if failed else 0)
