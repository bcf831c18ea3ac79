"""Helpers for benchmarks: start and stop a ``zhongshu serve`` process on loopback, talk to
it over one persistent HTTP/1.1 connection, and read its memory from /proc.

Only 127.0.0.1 is ever contacted. The server is started in its own process group and is
stopped by its own pid (SIGTERM, then SIGKILL after a grace period).
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

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _zhongshu_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("zhongshu")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from zhongshu.platform.cli import main; main()"]


def rss_mb(pid: int, key: str = "VmRSS") -> float | None:
    """Resident memory of a process in MB (``VmRSS``; ``VmHWM`` for the peak)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class Server:
    """A ``zhongshu serve`` process. Use as a context manager."""

    def __init__(self, data_dir: str | Path, database_url: str, *, port: int | None = None, threads: int | None = None,
                 env: dict | None = None, log_path: str | Path | None = None):
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.port = port or free_port()
        self.threads = threads
        self.extra_env = env or {}
        self.log_path = Path(log_path) if log_path else self.data_dir / "server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 120.0) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({"ZHONGSHU_DATA_DIR": str(self.data_dir), "ZHONGSHU_DATABASE_URL": self.database_url,
                    "PYTHONUNBUFFERED": "1", "ZHONGSHU_INIT_TEMPLATE": "none"})  # an empty demo tenant unless env says otherwise
        env.update(self.extra_env)
        cmd = _zhongshu_cmd() + ["serve", "--host", HOST, "--port", str(self.port)]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-3000:])
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not listen on {HOST}:{self.port} within {timeout:.0f}s; see {self.log_path}")

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        self.proc = None

    def rss_mb(self) -> float | None:
        return rss_mb(self.pid)

    def peak_rss_mb(self) -> float | None:
        return rss_mb(self.pid, "VmHWM")

    def credentials(self) -> dict:
        return json.loads((self.data_dir / "admin_credentials.json").read_text("utf-8"))

    def client(self, **kw) -> "Client":
        return Client(HOST, self.port, **kw)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class HttpError(RuntimeError):
    def __init__(self, status: int, body: bytes, method: str, path: str):
        super().__init__(f"{method} {path} -> {status}: {body[:500].decode('utf-8', 'replace')}")
        self.status = status


class Client:
    """One keep-alive HTTP/1.1 connection (stdlib http.client); reconnects if the server
    closed it. JSON in, JSON out."""

    def __init__(self, host: str, port: int, *, token: str | None = None, timeout: float = 600.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.token = token
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def _headers(self, has_body: bool) -> dict:
        h = {"Accept": "application/json", "Connection": "keep-alive"}
        if has_body:
            h["Content-Type"] = "application/json"
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        elif self.cookie:
            h["Cookie"] = self.cookie
            if self.csrf:
                h["X-CSRF-Token"] = self.csrf
        return h

    def raw(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Sends one request and reads the whole response; returns (status, body bytes)."""
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=self._headers(body is not None))
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                sc = resp.getheader("Set-Cookie")
                if sc and not self.token:
                    self.cookie = sc.split(";", 1)[0]
                return resp.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, payload=None, *, expect: tuple[int, ...] = (200, 201)):
        body = None if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode())
        status, data = self.raw(method, path, body)
        if status not in expect:
            raise HttpError(status, data, method, path)
        return json.loads(data) if data else None

    def login(self, email: str, password: str) -> dict:
        out = self.call("POST", "/api/v1/auth/login", {"email": email, "password": password})
        self.csrf = out.get("csrf_token")
        return out

    def close(self):
        self.conn.close()
