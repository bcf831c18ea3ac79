"""Browser tests: a real server on 127.0.0.1 (werkzeug, temp SQLite) and Debian's Chromium
driven by Playwright. Skipped with a reason when Chromium is missing, except under CI=true."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

os.environ.setdefault("ZHONGSHU_ARGON2_PROFILE", "test")

CHROMIUM = os.environ.get("ZHONGSHU_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def _need_chromium():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is required in CI but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"Chromium not installed at {CHROMIUM}: apt-get install -y chromium to run the browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e .[test])")


class LiveServer:
    def __init__(self, tmp: Path):
        from werkzeug.serving import make_server

        from zhongshu.platform.app import create_app
        from zhongshu.platform.core import Platform

        cfg = {"DATABASE_URL": f"sqlite:///{tmp / 'ui.db'}", "DATA_DIR": str(tmp / "instance"), "SECRET_KEY": "ui-test",
               "RUN_WORKER": False, "RUN_SCHEDULER": False}
        (tmp / "instance").mkdir(parents=True, exist_ok=True)
        self.platform = Platform(cfg)
        self.platform.create_all()
        self.app = create_app(cfg, platform=self.platform)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def api(self, email: str, password: str, tenant: str):
        """A logged-in test client (same app, same database) for assertions through the API."""
        c = self.app.test_client()
        r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.get_data(as_text=True)
        csrf = r.get_json()["csrf_token"]

        class Api:
            def get(self, path):
                r = c.get(f"/api/v1/tenants/{tenant}{path}")
                assert r.status_code == 200, r.get_data(as_text=True)
                return r.get_json()

            def post(self, path, body):
                r = c.post(f"/api/v1/tenants/{tenant}{path}", json=body, headers={"X-CSRF-Token": csrf})
                assert r.status_code < 300, r.get_data(as_text=True)
                return r.get_json()
        return Api()

    def close(self):
        self.server.shutdown()
        self.platform.close()


@pytest.fixture
def live_server(tmp_path):
    s = LiveServer(tmp_path)
    yield s
    s.close()


@pytest.fixture
def browser():
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shot():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str):
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
    return take
