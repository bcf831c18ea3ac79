"""Webhook intake under concurrency: group commit and the route in front of Flask.

Real HTTP on 127.0.0.1 (a threaded WSGI server running the app), real SQLite and
PostgreSQL. Every accepted webhook must be one inbox row with one ``inbox.process`` job,
committed before its 200; resends stored once; one request's trouble never fails another's.
"""
from __future__ import annotations

import http.client
import json
import threading
import time

import pytest
from sqlalchemy import CheckConstraint, Column, Integer, MetaData, String, Table, create_engine, select
from werkzeug.serving import make_server

from zhongshu.connectors.service import intake
from zhongshu.connectors.service.group_commit import GroupCommitter
from zhongshu.connectors.webhook.connector import sign as webhook_sign

from .test_service_intake import GENERIC_ORDER, SECRET, inbox, install, jobs, post_generic

GENERIC_MAPPING = {"table": "orders", "key": ["global_id"], "fields": {"amount": {"path": "$.total", "transform": "to_number"}}}


@pytest.fixture
def orders_table(owner):
    owner.ok(owner.post("/tables", json={"api_name": "orders", "label": "订单", "fields": [
        {"api_name": "global_id", "type": "text", "unique": True}, {"api_name": "amount", "type": "currency"}]}), 201)


@pytest.fixture
def hook(owner, orders_table):
    return install(owner, "webhook", "miniapp", {"channel": "小程序", "mappings": [GENERIC_MAPPING]}, {"secret": SECRET})


@pytest.fixture
def http_server(app):
    """The app behind a real threaded HTTP server on 127.0.0.1."""
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_port
    srv.shutdown()
    srv.server_close()


def post(port, path, body: bytes, headers: dict, chunked: bool = False):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request("POST", path, body=iter([body]) if chunked else body, headers=headers,
                  encode_chunked=chunked)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def signed(order: dict, request_id: str) -> tuple[bytes, dict]:
    body = json.dumps(order, ensure_ascii=False).encode()
    return body, {"Content-Type": "application/json", "X-Zhongshu-Signature": webhook_sign(SECRET, body),
                  "X-Request-Id": request_id}


def test_concurrent_webhooks_over_http_are_each_stored_once_with_one_job(platform, hook, http_server):
    orders = [{**GENERIC_ORDER, "id": f"MP-{i:04d}"} for i in range(60)]
    sends = [signed(o, f"d-{o['id']}") for o in orders] + [signed(o, f"d-{o['id']}") for o in orders[:15]]
    results, lock = [], threading.Lock()
    start = threading.Barrier(12)

    def sender(share):
        start.wait()
        for body, headers in share:
            status, _, data = post(http_server, hook, body, headers)
            with lock:
                results.append((status, data))
    threads = [threading.Thread(target=sender, args=(sends[i::12],)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [s for s, _ in results] == [200] * len(sends), results[:3]
    rows = inbox(platform)
    assert sorted(r.external_id for r in rows) == sorted(o["id"] for o in orders)  # resends stored once
    by_key = {j.idempotency_key: j for j in jobs(platform)}
    assert sorted(by_key) == sorted(f"inbox:{r.id}" for r in rows)  # one job per row, no other
    assert all(by_key[f"inbox:{r.id}"].payload == {"inbox_id": r.id} for r in rows)


def test_the_hook_route_answers_like_the_api_without_its_session_or_token_checks(platform, hook, http_server):
    body, headers = signed(GENERIC_ORDER, "r-1")
    # an Authorization header or cookie of the sender's own is not the platform's business
    status, h, data = post(http_server, hook, body, {**headers, "Authorization": "Bearer not-a-platform-token",
                                                     "Cookie": "zhongshu_session=garbage"})
    assert status == 200 and json.loads(data) == {"ok": True}
    assert h["Cache-Control"] == "no-store" and h["X-Content-Type-Options"] == "nosniff"
    assert h["Content-Type"] == "application/json"
    [row] = inbox(platform)
    assert "Authorization" not in row.headers and "Cookie" not in row.headers
    # a body sent chunked (no Content-Length) is read whole
    order2 = {**GENERIC_ORDER, "id": "MP-CHUNKED"}
    body2, headers2 = signed(order2, "r-2")
    assert post(http_server, hook, body2, headers2, chunked=True)[0] == 200
    assert {r.external_id for r in inbox(platform)} == {GENERIC_ORDER["id"], "MP-CHUNKED"}
    # too large, announced or not: 413 and nothing stored
    platform.config["WEBHOOK_MAX_BYTES"] = 1024
    big, big_headers = signed({**GENERIC_ORDER, "id": "MP-BIG", "remarks": "x" * 4000}, "r-3")
    for chunked in (False, True):
        status, _, data = post(http_server, hook, big, big_headers, chunked=chunked)
        assert status == 413 and json.loads(data)["error"]["code"] == "too_large"
    assert len(inbox(platform)) == 2
    # other methods and paths are Flask's: JSON 405 / 404
    c = http.client.HTTPConnection("127.0.0.1", http_server, timeout=30)
    c.request("GET", hook)
    r = c.getresponse()
    assert r.status == 405 and json.loads(r.read())["error"]["code"] == "method_not_allowed"
    c.close()
    assert post(http_server, hook + "/extra", body, headers)[0] == 404
    assert post(http_server, "/api/v1/hooks/", body, headers)[0] == 404


def test_a_changed_install_fails_only_its_own_webhook_in_a_shared_batch(owner, platform, orders_table):
    url_a = install(owner, "webhook", "shop_a", {"channel": "A", "mappings": [GENERIC_MAPPING]}, {"secret": SECRET})
    url_b = install(owner, "webhook", "shop_b", {"channel": "B", "mappings": [GENERIC_MAPPING]}, {"secret": SECRET})
    target_a = intake._load_target(platform, url_a.rsplit("/", 1)[1])
    target_b = intake._load_target(platform, url_b.rsplit("/", 1)[1])
    owner.ok(owner.patch("/connectors/shop_b", json={"enabled": False}))  # after B's settings were read

    def accepted(target, order):
        body, headers = signed(order, "x")
        connector = intake.connector_for(platform, target.connector)
        events = connector.parse_webhook(headers, body, target.config)
        return intake.AcceptedWebhook(platform, target.guard, events, headers, body)
    items = [accepted(target_b, {**GENERIC_ORDER, "id": "B-1"}), accepted(target_a, {**GENERIC_ORDER, "id": "A-1"}),
             accepted(target_a, {**GENERIC_ORDER, "id": "A-1"})]  # the same event twice in one batch
    with platform.WriteSession.kw["bind"].begin() as conn:
        out = intake.write_accepted(conn, items)
    assert isinstance(out[0], intake.StaleInstall)
    [row] = inbox(platform)
    assert row.external_id == "A-1" and out[1] == [row.id] and out[2] == []  # stored once; the second is a duplicate
    assert [j.idempotency_key for j in jobs(platform)] == [f"inbox:{row.id}"]


def test_group_commit_can_be_switched_off(platform, owner, hook):
    platform.config["WEBHOOK_GROUP_COMMIT"] = "false"
    assert intake._committer(platform) is None
    assert post_generic(owner.client, hook, GENERIC_ORDER, request_id="r").status_code == 200
    assert post_generic(owner.client, hook, GENERIC_ORDER, request_id="r").status_code == 200
    assert len(inbox(platform)) == 1 and len(jobs(platform)) == 1


# -- the group committer itself, on a table of its own --------------------------------------------

@pytest.fixture
def notes(database_url):
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    meta = MetaData()
    table = Table("gc_notes", meta, Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("text", String(50), nullable=False), CheckConstraint("text <> 'bad'", name="no_bad"))
    meta.drop_all(engine)
    meta.create_all(engine)
    yield engine, table
    engine.dispose()


def _stored(engine, table):
    with engine.connect() as c:
        return sorted(c.execute(select(table.c.text)).scalars())


def test_waiting_writers_share_one_transaction_and_each_hears_only_after_the_commit(notes):
    engine, table = notes
    gate, first_in = threading.Event(), threading.Event()
    batches = []

    def write(conn, items):
        if not batches:
            first_in.set()
            gate.wait(30)  # hold the first batch open while the others queue up
        batches.append(list(items))
        conn.execute(table.insert(), [{"text": t} for t in items])
        return [f"stored {t}" for t in items]
    gc = GroupCommitter(engine.connect, write)
    answers = {}

    def submit(t):
        answers[t] = gc.submit(t, timeout=60)
    first = threading.Thread(target=submit, args=("n0",))
    first.start()
    assert first_in.wait(30)
    others = [threading.Thread(target=submit, args=(f"n{i}",)) for i in range(1, 9)]
    for t in others:
        t.start()
    deadline = time.monotonic() + 30
    while gc.waiting() < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert answers == {} and _stored(engine, table) == []  # nobody answered before a commit
    gate.set()
    for t in [first, *others]:
        t.join(60)
    assert answers == {f"n{i}": f"stored n{i}" for i in range(9)}
    assert [len(b) for b in batches] == [1, 8]  # the eight waiting writers: one transaction
    assert _stored(engine, table) == sorted(f"n{i}" for i in range(9))


def test_an_item_the_database_refuses_fails_alone_and_the_rest_of_its_batch_commits(notes):
    engine, table = notes
    gate, first_in = threading.Event(), threading.Event()
    calls = []

    def write(conn, items):
        calls.append(list(items))
        if len(calls) == 1:
            first_in.set()
            gate.wait(30)
        conn.execute(table.insert(), [{"text": t} for t in items])
        return [None] * len(items)
    gc = GroupCommitter(engine.connect, write)
    errors, done = {}, []

    def submit(t):
        try:
            gc.submit(t, timeout=60)
            done.append(t)
        except Exception as e:  # noqa: BLE001
            errors[t] = e
    first = threading.Thread(target=submit, args=("a",))
    first.start()
    assert first_in.wait(30)
    rest = [threading.Thread(target=submit, args=(t,)) for t in ("b", "bad", "c")]
    for t in rest:
        t.start()
    deadline = time.monotonic() + 30
    while gc.waiting() < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for t in [first, *rest]:
        t.join(60)
    assert sorted(done) == ["a", "b", "c"] and list(errors) == ["bad"]
    assert _stored(engine, table) == ["a", "b", "c"]


def test_an_unreachable_database_fails_every_waiting_writer(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")
    gc = GroupCommitter(engine.connect, lambda conn, items: [None for _ in items], fatal=(Exception,))
    with pytest.raises(Exception):
        gc.submit("x", timeout=30)
    engine.dispose()
