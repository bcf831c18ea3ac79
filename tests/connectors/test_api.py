"""The connector API: manifest, ids, errors, HTTP client, mapping, secrets, registry."""
import copy
import time

import pytest
from werkzeug.wrappers import Response

from zhongshu.connectors.api import (BUILTINS, MANIFEST_SCHEMA, ConfigError, ConnectorRegistry,
                                     CredentialCipher, DecryptionError, FieldMapping, HttpClient,
                                     InboundEvent, Manifest, MappingError, PayloadError, PermanentError,
                                     RetryableError, SignatureError, backoff_delay, classify, generate_key,
                                     global_id, merge_credentials, redact, validate_mapping)
from zhongshu.connectors.api.mapping import get



# ---------------------------------------------------------------- global id and events
def test_global_id_is_sha256_of_channel_colon_external_id():
    import hashlib
    assert global_id("抖音", "6921") == hashlib.sha256("抖音:6921".encode()).hexdigest()
    assert global_id("抖音", 6921) == global_id("抖音", "6921")
    assert global_id("Shopify", "6921") != global_id("抖音", "6921")
    with pytest.raises(ValueError):
        global_id("", "1")


def test_inbound_event_is_utc_and_has_stable_keys():
    from datetime import datetime, timedelta, timezone
    t = datetime(2024, 5, 1, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    e = InboundEvent("order.paid", 42, "抖音", t, {"p_id": 42}, source_id="m1")
    assert e.occurred_at.tzinfo == timezone.utc and e.occurred_at.hour == 12
    assert e.external_id == "42" and e.global_id == global_id("抖音", "42")
    assert InboundEvent.from_dict(e.to_dict()) == e
    same_delivery = InboundEvent("order.paid", "42", "抖音", t, {}, source_id="m1")
    assert same_delivery.dedupe_key == e.dedupe_key
    with pytest.raises(ValueError):
        InboundEvent("order.paid", "1", "x", datetime(2024, 1, 1), {})


# --------------------------------------------------------------------------- manifests
def test_every_builtin_manifest_is_valid_and_round_trips():
    reg = ConnectorRegistry.discover(entry_points=False)
    assert reg.failures == []
    assert sorted(reg.names()) == sorted(BUILTINS)
    for m in reg.manifests():
        assert Manifest.from_dict(m.to_dict()) == m
        assert m.labels["zh-CN"] and m.labels["en"]
        for mapping in m.mappings:
            validate_mapping(mapping)


def test_invalid_manifest_names_every_problem():
    bad = {"name": "Bad Name", "version": "one", "labels": {"en": "x"},
           "config_schema": {"type": "object"}, "credential_schema": {"type": "object"},
           "actions": [{"name": "a", "labels": {"zh-CN": "a", "en": "a"}, "input_schema": {"type": "object"}},
                       {"name": "a", "labels": {"zh-CN": "a", "en": "a"}, "input_schema": {"type": "object"}}]}
    with pytest.raises(ConfigError) as exc:
        Manifest.from_dict(bad)
    text = str(exc.value)
    assert "name" in text and "version" in text and "zh-CN" in text and "duplicate action" in text
    assert MANIFEST_SCHEMA["$schema"].endswith("2020-12/schema")


# ------------------------------------------------------------------------------ errors
def test_classify_tells_the_outbox_what_to_do():
    assert classify(RetryableError("x", retry_after=30)).action == "retry"
    assert classify(RetryableError("x", retry_after=30)).retry_after == 30
    assert classify(PermanentError("x")).action == "dead_letter"
    assert classify(SignatureError("x")).action == "reject"
    d = classify(ZeroDivisionError("bug"))
    assert d.action == "retry" and d.unexpected


def test_backoff_grows_and_honours_retry_after():
    import random
    rng = random.Random(1)
    d1, d5 = backoff_delay(1, rng=rng, jitter=0), backoff_delay(5, rng=rng, jitter=0)
    assert d1 == 5 and d5 == 80
    assert backoff_delay(1, retry_after=120, rng=rng) >= 120
    assert backoff_delay(50, rng=rng, jitter=0) == 3600


# --------------------------------------------------------------------------- http client
def test_http_client_maps_status_codes(serve, reply):
    def handler(req):
        code = int(req.args.get("code", 200))
        if code == 429:
            return Response("slow down", 429, headers={"Retry-After": "7"})
        if req.args.get("garbage"):
            return Response("<html>not json", 200)
        return reply({"code": code}, status=code)

    srv = serve(handler)
    http = HttpClient(timeout=5)
    assert http.request("GET", srv.url, params={"code": 200}).json() == {"code": 200}
    with pytest.raises(RetryableError) as e500:
        http.request("GET", srv.url, params={"code": 503})
    assert e500.value.code == "http_503"
    with pytest.raises(RetryableError) as e429:
        http.request("GET", srv.url, params={"code": 429})
    assert e429.value.retry_after == 7
    with pytest.raises(PermanentError) as e404:
        http.request("GET", srv.url, params={"code": 404})
    assert e404.value.code == "http_404" and not isinstance(e404.value, RetryableError)
    with pytest.raises(PayloadError, match="not valid JSON"):
        http.request("GET", srv.url, params={"garbage": 1}).json()


def test_http_client_timeout_and_refused_connection_are_retryable(serve, reply):
    release = __import__("threading").Event()

    def slow(req):
        release.wait(5)
        return reply({})

    srv = serve(slow)
    try:
        with pytest.raises(RetryableError) as exc:
            HttpClient(timeout=0.2).request("GET", srv.url)
        assert exc.value.code == "timeout"
    finally:
        release.set()
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(RetryableError) as exc:
        HttpClient(timeout=2).request("GET", f"http://127.0.0.1:{port}/")
    assert exc.value.code == "network"


# ------------------------------------------------------------------------------ mapping
ORDER_MAPPING = {
    "table": "orders",
    "fields": {
        "external_order_id": {"path": "$.id", "transform": "to_string", "required": True},
        "channel": {"const": "小程序"},
        "amount_due": {"path": "$.total", "transform": "to_number"},
        "amount_paid": {"path": "$.paid_fen", "transform": {"op": "to_number", "scale": 0.01}},
        "created": {"path": "$.created", "transform": {"op": "to_datetime", "source_tz": "Asia/Shanghai"}},
        "status": {"path": "$.state", "transform": {"op": "lookup", "map": {"PAID": "已付款"}, "default": "待付款"}},
        "level": {"path": "$.buyer.level", "transform": "select"},
        "remarks": {"template": "{{ payload.buyer.name }}: {{ payload.note | default('无') }}"},
        "vip": {"path": "$.buyer.vip", "transform": "to_bool", "default": False},
    },
    "subtables": {"items": {"path": "$.lines[*]", "fields": {
        "sku": "@.sku", "qty": {"path": "@.qty", "transform": "to_integer"},
        "order_ref": "$.id"}}},
}
PAYLOAD = {"id": 1001, "total": "¥1,299.50", "paid_fen": 129950, "created": "2024-03-01 09:30:00",
           "state": "PAID", "buyer": {"name": "王芳", "level": "VIP", "vip": "是"},
           "lines": [{"sku": "A-1", "qty": "2"}, {"sku": "B-2", "qty": 1}]}


def test_mapping_turns_a_payload_into_an_order_with_items():
    rec = FieldMapping(ORDER_MAPPING).apply(
        PAYLOAD, tz="Asia/Shanghai", select_options={"level": [{"value": "VIP", "label": {"zh-CN": "贵宾"}},
                                                               {"value": "普通", "label": "普通"}]})
    assert rec.values == {
        "external_order_id": "1001", "channel": "小程序", "amount_due": 1299.5, "amount_paid": 1299.5,
        "created": "2024-03-01T09:30:00+08:00", "status": "已付款", "level": "VIP",
        "remarks": "王芳: 无", "vip": True}
    assert rec.subtables["items"] == [{"sku": "A-1", "qty": 2, "order_ref": 1001},
                                      {"sku": "B-2", "qty": 1, "order_ref": 1001}]


def test_mapping_converts_utc_to_the_tenant_time_zone():
    m = {"table": "orders", "fields": {"t": {"path": "$.t", "transform": "to_datetime"}}}
    assert FieldMapping(m).apply({"t": "2024-03-01T01:30:00Z"}, tz="Asia/Shanghai").values["t"] == \
        "2024-03-01T09:30:00+08:00"
    assert FieldMapping(m).apply({"t": 1709256600}, tz="UTC").values["t"] == "2024-03-01T01:30:00+00:00"


def test_mapping_errors_name_the_mapping_path_and_the_data_path():
    bad = copy.deepcopy(PAYLOAD)
    bad["total"] = "about 12"
    bad["lines"][1]["qty"] = "1.5"
    del bad["id"]
    with pytest.raises(MappingError) as exc:
        FieldMapping(ORDER_MAPPING).apply(bad)
    paths = {(i.mapping_path, i.payload_path) for i in exc.value.issues}
    assert ("fields.amount_due.transform[0]", "$.total") in paths
    assert ("subtables.items.fields.qty.transform[0]", "$.lines[1].qty") in paths
    assert ("fields.external_order_id", "$.id") in paths
    lenient = FieldMapping(ORDER_MAPPING).apply(bad, strict=False)
    assert "amount_due" not in lenient.values and lenient.values["status"] == "已付款"


def test_select_rejects_a_value_that_is_not_an_option():
    m = {"table": "orders", "fields": {"level": {"path": "$.l", "transform": "select"}}}
    with pytest.raises(MappingError, match=r"fields.level.transform\[0\]: select"):
        FieldMapping(m).apply({"l": "钻石"}, select_options={"level": ["普通", "VIP"]})


def test_invalid_mapping_documents_are_rejected_with_paths():
    with pytest.raises(MappingError) as exc:
        validate_mapping({"table": "orders", "fields": {
            "a": {"path": "no-dollar"}, "b": {"path": "$.x", "transform": "to_nothing"},
            "c": {"template": "{{ unclosed"}, "d": {"path": "$.x", "transform": {"op": "to_datetime",
                                                                             "source_tz": "Mars/Base"}}}})
    text = str(exc.value)
    assert "fields.a.path" in text and "fields.b.transform" in text
    with pytest.raises(MappingError) as exc2:
        validate_mapping({"table": "orders", "fields": {"c": {"template": "{{ unclosed"},
                                                        "d": {"path": "$.x", "transform": {
                                                            "op": "to_datetime", "source_tz": "Mars/Base"}}}})
    assert "fields.c.template" in str(exc2.value) and "fields.d.transform[0].source_tz" in str(exc2.value)


def test_paths_support_indexes_quotes_and_wildcards():
    data = {"a": [{"b": 1}, {"b": 2}], "订单": {"编号": "X"}, "k.v": 3}
    assert get("$.a[-1].b", data) == 2
    assert get("$.a[*].b", data) == [1, 2]
    assert get("$.订单.编号", data) == "X"
    assert get("$['k.v']", data) == 3
    assert get("$.missing.x", data, "dflt") == "dflt"


def test_templates_are_sandboxed():
    m = {"table": "orders", "fields": {"x": {"template": "{{ payload.__class__.__mro__ }}"}}}
    assert FieldMapping(m).apply({}).values["x"] == ""  # internals are invisible
    m = {"table": "orders", "fields": {"x": {"template": "{{ payload.update({'a': 1}) }}"}}}
    with pytest.raises(MappingError, match="fields.x.template: .*SecurityError"):
        FieldMapping(m).apply({})  # and the data cannot be mutated


# ------------------------------------------------------------------------------ secrets
def test_credentials_are_encrypted_and_keys_rotate():
    old, new = generate_key(), generate_key()
    token = CredentialCipher([old]).encrypt({"app_secret": "s3cr3t", "app_key": "k"})
    assert "s3cr3t" not in token
    rotated_cipher = CredentialCipher([new, old])  # new key first, old still decrypts
    assert rotated_cipher.decrypt(token) == {"app_secret": "s3cr3t", "app_key": "k"}
    assert rotated_cipher.needs_rotation(token)
    token2 = rotated_cipher.rotate(token)
    assert not rotated_cipher.needs_rotation(token2)
    assert CredentialCipher([new]).decrypt(token2)["app_secret"] == "s3cr3t"  # old key can go now
    with pytest.raises(DecryptionError):
        CredentialCipher([new]).decrypt(token)
    with pytest.raises(ConfigError):
        CredentialCipher(["not-a-key"])


def test_cipher_from_env(monkeypatch):
    k1, k2 = generate_key(), generate_key()
    monkeypatch.setenv("ZHONGSHU_SECRET_KEYS", f"{k1}, {k2}")
    c = CredentialCipher.from_env()
    assert CredentialCipher([k2]).decrypt(CredentialCipher([k2]).encrypt({"a": 1})) == {"a": 1}
    assert c.decrypt(CredentialCipher([k2]).encrypt({"a": 1})) == {"a": 1}


def test_redact_masks_secrets_by_schema_and_by_name():
    schema = {"type": "object", "properties": {"pin": {"type": "string", "writeOnly": True},
                                               "shop": {"type": "string"}}}
    out = redact({"pin": "1234", "shop": "a.myshopify.com", "access_token": "shpat_x", "app_key": "k1",
                  "nested": {"password": "p", "user": "u"}, "empty_secret": ""}, schema)
    assert out["pin"] == out["access_token"] == out["app_key"] == out["nested"]["password"] == "••••••"
    assert out["shop"] == "a.myshopify.com" and out["nested"]["user"] == "u" and out["empty_secret"] == ""
    assert merge_credentials({"pin": "1234", "shop": "a"}, {"pin": "••••••", "shop": "b"}) == \
        {"pin": "1234", "shop": "b"}
