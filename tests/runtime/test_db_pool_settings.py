"""The database pool of a web process follows its request threads (deploy/gunicorn.conf.py,
deploy/granian.sh -> ZHONGSHU_DB_POOL_SIZE / ZHONGSHU_DB_MAX_OVERFLOW -> the platform's
engine), so busy threads do not open and close overflow connections per request."""
from __future__ import annotations

import os
import runpy
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from zhongshu.platform.core import Platform

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_the_platform_sizes_its_postgresql_pool_from_the_config(config, tmp_path):
    if not config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("SQLite keeps its own pool settings (no server connections to count)")
    p = Platform({**config, "DB_POOL_SIZE": "33", "DB_MAX_OVERFLOW": "4"})
    try:
        assert (p.engine.pool.size(), p.engine.pool._max_overflow) == (33, 4)
    finally:
        p.close()
    p = Platform(config)  # unset: SQLAlchemy settings of platform/db.py
    try:
        assert (p.engine.pool.size(), p.engine.pool._max_overflow) == (10, 20)
    finally:
        p.close()


def test_the_environment_sets_the_pool(monkeypatch, config):
    from zhongshu.platform.config import load_config

    monkeypatch.setenv("ZHONGSHU_DB_POOL_SIZE", "17")
    monkeypatch.setenv("ZHONGSHU_DB_MAX_OVERFLOW", "4")
    cfg = load_config({"DATA_DIR": config["DATA_DIR"]})
    assert (cfg["DB_POOL_SIZE"], cfg["DB_MAX_OVERFLOW"]) == (17, 4)


def test_gunicorn_sizes_each_process_pool_from_its_threads(monkeypatch):
    conf = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    monkeypatch.delenv("ZHONGSHU_DB_POOL_SIZE", raising=False)
    monkeypatch.delenv("ZHONGSHU_DB_MAX_OVERFLOW", raising=False)
    # the threads the process really runs (--threads 16 on the command line), not the file's default
    conf["post_fork"](None, SimpleNamespace(cfg=SimpleNamespace(threads=16)))
    assert (os.environ["ZHONGSHU_DB_POOL_SIZE"], os.environ["ZHONGSHU_DB_MAX_OVERFLOW"]) == ("17", "4")
    # set by hand: kept
    monkeypatch.setenv("ZHONGSHU_DB_POOL_SIZE", "40")
    assert conf["pool_settings"](8)["ZHONGSHU_DB_POOL_SIZE"] == "40"
    assert conf["pool_settings"](8, {})["ZHONGSHU_DB_POOL_SIZE"] == "9"


@pytest.mark.parametrize("env, expect", [({}, ("33", "4")), ({"ZHONGSHU_WEB_THREADS": "8"}, ("9", "4")),
                                         ({"ZHONGSHU_DB_POOL_SIZE": "50"}, ("50", "4"))])
def test_granian_sizes_each_process_pool_from_its_blocking_threads(tmp_path, env, expect):
    fake = tmp_path / "granian"  # stands in for granian: shows what it was started with
    fake.write_text('#!/bin/sh\necho "$ZHONGSHU_DB_POOL_SIZE $ZHONGSHU_DB_MAX_OVERFLOW $*"\n')
    fake.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if not k.startswith("ZHONGSHU_")}
    out = subprocess.run(["sh", str(DEPLOY / "granian.sh")], env={**base, "PATH": f"{tmp_path}:{base['PATH']}", **env},
                         capture_output=True, text=True, check=True).stdout.split()
    assert tuple(out[:2]) == expect
    threads = env.get("ZHONGSHU_WEB_THREADS", "32")
    assert out[out.index("--blocking-threads") + 1] == threads
