"""Helpers for the crash tests: a PostgreSQL-backed instance folder and real `zhongshu`
processes (serve / worker) started on 127.0.0.1 and killed with SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from zhongshu.platform.core import Platform

ROOT = Path(__file__).resolve().parents[2]
ZHONGSHU = str(Path(sys.executable).with_name("zhongshu"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    """One instance folder + database; starts and kills `zhongshu` processes on it."""

    def __init__(self, url: str, data_dir: Path):
        self.url, self.data_dir = url, data_dir
        self.config = {"DATABASE_URL": url, "DATA_DIR": str(data_dir), "SECRET_KEY": "crash-secret",
                       "RUN_WORKER": False, "RUN_SCHEDULER": False}
        self.env = {**os.environ, "ZHONGSHU_DATABASE_URL": url, "ZHONGSHU_DATA_DIR": str(data_dir),
                    "ZHONGSHU_SECRET_KEY": "crash-secret", "ZHONGSHU_RUN_WORKER": "false",
                    "ZHONGSHU_RUN_SCHEDULER": "false", "ZHONGSHU_ARGON2_PROFILE": "test", "NO_PROXY": "*"}
        self.procs: list[subprocess.Popen] = []
        self.platform = Platform(self.config)
        self.platform.create_all()

    def start(self, *args: str, log: str) -> subprocess.Popen:
        out = open(self.data_dir / log, "ab")
        p = subprocess.Popen([ZHONGSHU, *args], env=self.env, cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def serve(self, port: int) -> subprocess.Popen:
        p = self.start("serve", "--host", "127.0.0.1", "--port", str(port), "--no-init", "--threads", "8", log="serve.log")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1) as r:
                    if r.status == 200:
                        return p
            except OSError:
                time.sleep(0.1)
            if p.poll() is not None:
                raise RuntimeError((self.data_dir / "serve.log").read_text()[-2000:])
        raise RuntimeError("zhongshu serve did not start")

    @staticmethod
    def kill9(p: subprocess.Popen) -> None:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self.platform.close()


@pytest.fixture
def pg_instance(pg_database, tmp_path):
    e = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with e.connect() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    e.dispose()
    data = tmp_path / "instance"
    data.mkdir()
    inst = Instance(pg_database, data)
    yield inst
    inst.close()


def post_json(url: str, body: bytes, headers: dict, timeout: float = 10) -> int:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def write_figures(**kw) -> None:
    path = ROOT / "test-artifacts" / "reliability-figures.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(kw)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
