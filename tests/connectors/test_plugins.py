"""Plugins are discovered from the `zhongshu.connectors` entry point group; broken ones are
reported and isolated. The plugins are real distributions installed with pip."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zhongshu.connectors.api import ConnectorRegistry, UnknownConnector, run_action

HERE = Path(__file__).parent


def pip_install(src: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True, timeout=300,
                   cwd=str(target.parent))


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """``installed("example_plugin")`` pip-installs a plugin into a temp dir on sys.path."""
    def install(name):
        target = tmp_path / f"site-{name}"
        target.mkdir()
        src = tmp_path / f"src-{name}"  # build from a copy: no build/ or egg-info in the repo
        shutil.copytree(HERE / name, src)
        pip_install(src, target)
        monkeypatch.syspath_prepend(str(target))
        return target
    yield install
    for mod in [m for m in sys.modules if m.startswith(("zhongshu_example_connector", "zhongshu_broken"))]:
        del sys.modules[mod]


def test_an_installed_plugin_is_discovered_without_changing_the_core(installed, serve, reply):
    assert "hello" not in ConnectorRegistry.discover()
    installed("example_plugin")
    reg = ConnectorRegistry.discover()
    assert "hello" in reg
    info = reg.info("hello")
    assert info.source == "entry_point:zhongshu-example-connector"
    assert reg.manifest("hello").labels["zh-CN"] == "你好接口"
    assert "webhook" in reg and reg.failures == []

    srv = serve(lambda req: reply({"greeted": req.get_json()["order_no"]}))
    outcome = run_action(reg.create("hello"), "greet", {"order_no": "SO-1"}, {"base_url": srv.url},
                         {"token": "t"}, idempotency_key="job-1")
    assert outcome.ok and outcome.result.output == {"greeted": "SO-1"}
    assert srv.requests[0]["headers"]["Authorization"] == "Bearer t"
    assert srv.requests[0]["headers"]["Idempotency-Key"] == "job-1"


def test_broken_plugins_are_reported_and_isolated(installed):
    installed("broken_plugin")
    reg = ConnectorRegistry.discover()
    failed = {f.name: f for f in reg.failures}
    assert set(failed) == {"explodes", "bad_manifest", "not_a_connector", "webhook"}
    assert "fails at import time" in failed["explodes"].error
    assert "invalid manifest" in failed["bad_manifest"].error and "version" in failed["bad_manifest"].error
    assert "not a Connector" in failed["not_a_connector"].error
    assert "already registered by builtin" in failed["webhook"].error
    # everything else still works, and the built-in kept its name
    assert reg.get("webhook").manifest.version == "1.0.0"
    assert len(reg.names()) == 11
    report = reg.report()
    assert {f["name"] for f in report["failed"]} == set(failed)
    with pytest.raises(UnknownConnector, match="failed to load"):
        reg.get("explodes")


def test_a_connector_that_crashes_at_run_time_is_contained():
    from zhongshu.connectors.api import ActionResult, Connector, Manifest

    class Buggy(Connector):
        manifest = Manifest.from_dict({"name": "buggy", "version": "0.0.1",
                                       "labels": {"zh-CN": "有缺陷", "en": "Buggy"},
                                       "config_schema": {"type": "object"}, "credential_schema": {"type": "object"},
                                       "actions": [{"name": "go", "labels": {"zh-CN": "走", "en": "Go"},
                                                    "input_schema": {"type": "object"}}]})

        def execute(self, action, input, config, credentials, *, idempotency_key):
            return ActionResult({"x": 1 / 0})

    reg = ConnectorRegistry.discover(entry_points=False)
    reg.register(Buggy)
    outcome = run_action(reg.create("buggy"), "go", {}, {}, {}, idempotency_key="k")
    assert not outcome.ok and outcome.decision.unexpected
    assert outcome.error["error"] == "ZeroDivisionError"
