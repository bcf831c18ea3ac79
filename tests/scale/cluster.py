"""A many-node Zhongshu on one machine, for the multi-node tests and bench/bench_peak.py:
gunicorn (or granian) web nodes, Celery worker nodes, relays and schedulers as real processes on
127.0.0.1, sharing one PostgreSQL database and one broker.

Every process is started in its own session (process group) and stopped by its own id:
``stop()`` sends SIGTERM and waits, ``kill()`` sends SIGKILL to its process group (the
Celery pool children die with their parent, like a node losing power).
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PG_ADMIN_URL = os.environ.get("ZHONGSHU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BROKERS = {"rabbitmq": os.environ.get("ZHONGSHU_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
           "redis": os.environ.get("ZHONGSHU_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pg_problem() -> str | None:
    try:
        e = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            c.execute(text("select 1"))
        e.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


def broker_problem(url: str) -> str | None:
    try:
        from kombu import Connection
    except ImportError as e:
        return f"celery/kombu not installed: {e}"
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


def create_database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _zhongshu() -> list[str]:
    exe = Path(sys.executable).with_name("zhongshu")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "zhongshu.platform.cli"]


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies (Linux), so nothing is left behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the fixture's teardown still stops them
        pass


class Proc:
    def __init__(self, name: str, cmd: list[str], env: dict, log_dir: Path):
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=str(ROOT), env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL to this process's own group (itself and its pool children)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._reap()

    def _reap(self) -> None:
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        self._log.close()
        self.proc = None


class Cluster:
    """Processes of one deployment. ``env`` is shared by all of them."""

    def __init__(self, workdir: Path, database_url: str, broker_url: str, *, queue_prefix: str = "",
                 extra_env: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.broker_url = broker_url
        env = dict(os.environ)
        env.update({
            "ZHONGSHU_DATABASE_URL": database_url, "ZHONGSHU_DATA_DIR": str(self.workdir / "instance"),
            "ZHONGSHU_SECRET_KEY": "scale-test-secret-key-0123456789", "ZHONGSHU_BROKER_URL": broker_url,
            "ZHONGSHU_CELERY_QUEUE_PREFIX": queue_prefix, "ZHONGSHU_RUN_WORKER": "false",
            "ZHONGSHU_RUN_SCHEDULER": "false", "ZHONGSHU_ARGON2_PROFILE": "test", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests" / "scale"), env.get("PYTHONPATH", "")])),
        })
        env.update(extra_env or {})
        self.env = env
        self.procs: dict[str, Proc] = {}
        self.ports: dict[str, int] = {}

    def _add(self, name: str, cmd: list[str], env: dict | None = None) -> Proc:
        p = Proc(name, cmd, {**self.env, **(env or {})}, self.workdir)
        self.procs[name] = p
        return p.start()

    def web(self, name: str, *, workers: int = 1, threads: int = 4, env: dict | None = None) -> Proc:
        port = self.ports.get(name) or free_port()
        self.ports[name] = port
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
               "--bind", f"{HOST}:{port}", "--workers", str(workers), "--threads", str(threads)]
        return self._add(name, cmd, env)

    def web_granian(self, name: str, *, workers: int = 1, threads: int = 32, env: dict | None = None) -> Proc:
        """A web node on granian, started by the production script deploy/granian.sh (the
        same WSGI app as :meth:`web`; granian comes from this venv's bin directory)."""
        port = self.ports.get(name) or free_port()
        self.ports[name] = port
        node_env = {"ZHONGSHU_BIND": f"{HOST}:{port}", "ZHONGSHU_WEB_WORKERS": str(workers),
                    "ZHONGSHU_WEB_THREADS": str(threads), "ZHONGSHU_LOG_LEVEL": "warning",
                    "PATH": os.pathsep.join([str(Path(sys.executable).parent), self.env.get("PATH", "")])}
        return self._add(name, ["sh", str(ROOT / "deploy" / "granian.sh")], {**node_env, **(env or {})})

    def celery_worker(self, name: str, *, concurrency: int = 2, lease: int = 10, imports=("scale_effects",),
                      queues: str | None = None, env: dict | None = None) -> Proc:
        cmd = _zhongshu() + ["celery-worker", "-c", str(concurrency), "--lease", str(lease), "-n", f"{name}-{os.getpid()}@%h",
                             "-l", "INFO"]
        for m in imports:
            cmd += ["--import", m]
        if queues:
            cmd += ["-Q", queues]
        return self._add(name, cmd, env)

    def relay(self, name: str = "relay", *, republish_after: int = 15, poll: float = 0.05, env: dict | None = None) -> Proc:
        return self._add(name, _zhongshu() + ["relay", "--poll", str(poll), "--republish-after", str(republish_after)], env)

    def scheduler(self, name: str, env: dict | None = None) -> Proc:
        return self._add(name, _zhongshu() + ["scheduler", "--import", "scale_effects"], env)

    def url(self, name: str) -> tuple[str, int]:
        return HOST, self.ports[name]

    def wait_http(self, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        p = self.procs[name]
        while time.monotonic() < deadline:
            if not p.alive():
                raise RuntimeError(f"{name} exited:\n{p.log()}")
            try:
                c = http.client.HTTPConnection(HOST, self.ports[name], timeout=2)
                c.request("GET", "/api/v1/health")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer within {timeout} s:\n{p.log()}")

    def wait_log(self, name: str, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        p = self.procs[name]
        while time.monotonic() < deadline:
            if needle in p.log(200000):
                return
            if not p.alive():
                raise RuntimeError(f"{name} exited:\n{p.log()}")
            time.sleep(0.2)
        raise RuntimeError(f"{name}: no {needle!r} within {timeout} s:\n{p.log()}")

    def stop_all(self) -> None:
        for p in reversed(list(self.procs.values())):
            try:
                p.stop(grace=15)
            except Exception:  # noqa: BLE001
                p.kill()


def purge_queues(broker_url: str, names) -> None:
    """Empties the test's queues on the broker (left-overs of an interrupted run)."""
    from kombu import Connection

    with Connection(broker_url, connect_timeout=3) as conn:
        ch = conn.channel()
        for q in names:
            try:
                if broker_url.startswith("redis"):
                    conn.default_channel.client.delete(q)
                else:
                    ch.queue_purge(q)
            except Exception:  # noqa: BLE001 - a queue that does not exist yet
                ch = conn.channel()


class Http:
    """One keep-alive connection to one web node."""

    def __init__(self, host: str, port: int, token: str | None = None):
        self.host, self.port, self.token = host, port, token
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body, ensure_ascii=False).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, dict(r.getheaders()), (json.loads(data) if data[:1] in (b"{", b"[") else data)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise

    def close(self):
        self.conn.close()


# -- a tenant with an orders table and a signed generic webhook --------------------------------

WEBHOOK_SECRET = "scale-webhook-secret-0123456789"
ORDERS_TABLE = {
    "api_name": "orders", "label": {"zh-CN": "订单", "en": "Orders"},
    "fields": [
        {"api_name": "channel", "type": "text", "label": "渠道"},
        {"api_name": "external_id", "type": "text", "label": "平台订单号"},
        {"api_name": "global_id", "type": "text", "label": "全局ID", "unique": True},
        {"api_name": "amount", "type": "currency", "label": "金额"},
        {"api_name": "status", "type": "single_select", "label": "状态", "default": "待付款",
         "options": {"choices": [{"label": s} for s in ["待付款", "已付款", "已发货", "已取消"]]}},
        {"api_name": "note", "type": "text", "label": "备注"},
    ],
}
GENERIC_MAPPING = {"table": "orders", "key": ["global_id"],
                   "fields": {"amount": {"path": "$.total", "transform": "to_number"},
                              "status": {"path": "$.status", "default": "待付款"}}}


def prepare_tenant(database_url: str, data_dir: Path, *, table: dict | None = None, mapping: dict | None = None,
                   slug: str = "acme", setup=None) -> dict:
    """Migrates the database and makes tenant ``slug`` with an owner, an API token, the
    orders table and a generic webhook install (HMAC, event type from ``$.event``).
    Runs in this process through the Flask test client; returns what the load needs."""
    os.environ.setdefault("ZHONGSHU_ARGON2_PROFILE", "test")
    from zhongshu.platform.app import create_app
    from zhongshu.platform.core import Platform

    cfg = {"DATABASE_URL": database_url, "DATA_DIR": str(data_dir), "SECRET_KEY": "scale-test-secret-key-0123456789",
           "RUN_WORKER": False, "RUN_SCHEDULER": False, "OVERLOAD_OUTBOX_THRESHOLD": 0, "OVERLOAD_INBOX_THRESHOLD": 0}
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    zs = Platform(cfg)
    zs.migrate()
    from .scale_effects import meta as effects_meta  # noqa: F401 - registers the kind here too

    effects_meta.create_all(zs.engine)
    email = f"owner@{slug}.test"
    u = zs.create_user(email, "owner-password-123", name="Owner")
    t = zs.create_tenant(slug, f"{slug} 商贸", owner_email=u.email)
    app = create_app(cfg, platform=zs)
    client = app.test_client()
    r = client.post("/api/v1/auth/login", json={"email": email, "password": "owner-password-123"})
    assert r.status_code == 200, r.get_data(as_text=True)
    h = {"X-CSRF-Token": r.get_json()["csrf_token"]}
    base = f"/api/v1/tenants/{slug}"
    if setup is not None:  # e.g. install a template into the tenant
        setup(zs, t)
    if table is not False:
        r = client.post(base + "/tables", json=table or ORDERS_TABLE, headers=h)
        assert r.status_code == 201, r.get_data(as_text=True)
    r = client.post(base + "/connectors", headers=h, json={
        "connector": "webhook", "api_name": "miniapp",
        "config": {"channel": "小程序", "event_type_path": "$.event", "mappings": [mapping or GENERIC_MAPPING]},
        "credentials": {"secret": WEBHOOK_SECRET}})
    assert r.status_code == 201, r.get_data(as_text=True)
    hook = r.get_json()["install"]["webhook_url"].split("://", 1)[1].split("/", 1)[1]
    r = client.post(base + "/tokens", json={"name": "load"}, headers=h)
    assert r.status_code == 201, r.get_data(as_text=True)
    token = r.get_json()["token"]
    info = {"tenant": slug, "tenant_id": t.id, "hook_path": "/" + hook, "token": token, "platform": zs}
    return info


def signed(body: dict) -> tuple[bytes, dict]:
    from zhongshu.connectors.webhook.connector import sign

    raw = json.dumps(body, ensure_ascii=False).encode()
    return raw, {"Content-Type": "application/json", "X-Zhongshu-Signature": sign(WEBHOOK_SECRET, raw)}
