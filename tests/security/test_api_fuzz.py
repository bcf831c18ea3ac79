"""API fuzzing with schemathesis against the app's own OpenAPI document.

The app (create_app on a temporary SQLite file) has tenant ``acme`` with an ``orders`` table
(sub-table, links' targets) and a few records; every generated request carries the owner's
Bearer token, and the ``{tenant}`` path parameter is pinned to ``acme`` (random slugs would
only ever meet the 404 of the tenant check) and ``{table}`` to ``orders`` on most cases.

Checks: no 5xx (``not_a_server_error``) and, where the document describes the response,
the body conforms to it (``response_schema_conformance``) with the documented content type.
Bounded and repeatable: ``ZHONGSHU_FUZZ_EXAMPLES`` (default 25) examples per operation, drawn
with ``derandomize=True`` (a fixed seed per operation, so every run sends the same requests;
about a minute). The figures (requests
tried, operations covered, failures) go to test-artifacts/security-figures.json.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import zlib
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance  # noqa: E402

os.environ.setdefault("ZHONGSHU_ARGON2_PROFILE", "test")
EXAMPLES = int(os.environ.get("ZHONGSHU_FUZZ_EXAMPLES", "25"))
#: schemathesis' coverage phase (boundary values, unexpected methods: ~200 requests per
#: operation, ~5 minutes); on with ZHONGSHU_FUZZ_COVERAGE=1
COVERAGE = os.environ.get("ZHONGSHU_FUZZ_COVERAGE") == "1"
FIGURES = Path(__file__).resolve().parents[2] / "test-artifacts" / "security-figures.json"
STATS = {"requests": 0, "operations": set(), "statuses": {}, "server_errors": [], "schema_violations": []}
_lock = threading.Lock()


def _make_app():
    from tests.conftest import ORDERS, login
    from zhongshu.platform.app import create_app
    from zhongshu.platform.core import Platform

    tmp = Path(tempfile.mkdtemp(prefix="zs-fuzz-"))
    cfg = {"DATABASE_URL": f"sqlite:///{tmp / 'fuzz.db'}", "DATA_DIR": str(tmp / "instance"), "SECRET_KEY": "fuzz",
           "RUN_WORKER": False, "RUN_SCHEDULER": False}
    (tmp / "instance").mkdir()
    zs = Platform(cfg)
    zs.create_all()
    zs.create_user("owner@acme.test", "owner-password")
    zs.create_tenant("acme", "Acme", owner_email="owner@acme.test")
    app = create_app(cfg, platform=zs)
    app.config["LOGIN_MAX_ATTEMPTS"] = app.config["LOGIN_MAX_ATTEMPTS_PER_ADDRESS"] = 10**6
    owner = login(app, "owner@acme.test", "owner-password", "acme")
    owner.ok(owner.post("/tables", json=ORDERS), 201)
    for i in range(3):
        owner.ok(owner.post("/tables/orders/records", json={"customer_name": f"c{i}", "items": [{"sku": "A"}]}), 201)
    token = owner.ok(owner.post("/tokens", json={"name": "fuzz"}), 201)["token"]
    return app, token


APP, TOKEN = _make_app()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP)
schema.config.phases.coverage.enabled = COVERAGE
PINNED = {"tenant": "acme", "table": "orders"}


def _save():
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data["api_fuzz"] = {"requests": STATS["requests"], "operations_covered": len(STATS["operations"]),
                        "operations_in_document": len(list(schema.get_all_operations())),
                        "examples_per_operation": EXAMPLES, "coverage_phase": COVERAGE, "server_errors": len(STATS["server_errors"]),
                        "schema_violations": len(STATS["schema_violations"]), "statuses": STATS["statuses"]}
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps(data, indent=2, sort_keys=True))


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    _save()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_fuzz(case):
    for k, v in PINNED.items():
        if case.path_parameters and k in case.path_parameters:
            if k == "tenant" or zlib.crc32(str(case.path_parameters[k]).encode()) % 4:
                case.path_parameters[k] = v
    resp = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    with _lock:
        STATS["requests"] += 1
        STATS["operations"].add(case.operation.label)
        STATS["statuses"][str(resp.status_code)] = STATS["statuses"].get(str(resp.status_code), 0) + 1
    try:
        case.validate_response(resp, checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
    except (Exception, BaseExceptionGroup) as e:  # recorded, judged by the two summary tests below (so one run reports all)
        parts = getattr(e, "exceptions", None) or [e]
        first = " | ".join(f"{getattr(x, 'title', type(x).__name__)}: {(str(getattr(x, 'message', x)).splitlines() or [''])[0][:160]}"
                           for x in parts)
        with _lock:
            (STATS["server_errors"] if resp.status_code >= 500 else STATS["schema_violations"]).append(
                f"{case.operation.label} -> {resp.status_code}: {first[:200]} {json.dumps(case.path_parameters or {}, default=str)}")


def _violations_by_operation():
    out = {}
    for v in STATS["schema_violations"]:
        op, _, rest = v.partition(" -> ")
        out.setdefault(op, rest)
    return out


def _ops(items):
    return {v.partition(" -> ")[0] for v in items}


def test_summary_no_server_error():
    """Also prints every violation and 5xx (pytest -s) for the report."""
    for v in sorted(set(STATS["schema_violations"]) | set(STATS["server_errors"])):
        print("VIOLATION", v)
    if not STATS["requests"]:
        pytest.skip("run together with test_api_fuzz (not split across xdist workers)")
    _save()
    assert STATS["server_errors"] == [], "\n".join(STATS["server_errors"][:20])


HUGE = "9" * 30


def test_ids_beyond_64_bits_are_404_not_500():
    from tests.conftest import Api

    api = Api(APP.test_client(), "acme", token=TOKEN)
    codes = {"DELETE dashboard": api.delete(f"/dashboards/{HUGE}").status_code,
             "DELETE token": api.delete(f"/tokens/{HUGE}").status_code,
             "PATCH member": api.patch(f"/members/{HUGE}", json={"role": "viewer"}).status_code,
             "DELETE member": api.delete(f"/members/{HUGE}").status_code,
             "GET record": api.get(f"/tables/orders/records/{HUGE}").status_code,
             "GET table": api.get(f"/tables/{HUGE}").status_code}
    assert all(c < 500 for c in codes.values()), codes


def test_summary_every_response_conforms_to_the_document():
    """Every response of the run has the documented status' content type and body schema."""
    if not STATS["requests"]:
        pytest.skip("run together with test_api_fuzz (not split across xdist workers)")
    assert _violations_by_operation() == {}, json.dumps(_violations_by_operation(), ensure_ascii=False, indent=1)
