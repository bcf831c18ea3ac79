"""Defining tables and changing fields on tables that already hold data."""
import pytest

from zhongshu.platform import fields as ft


def test_every_field_type_can_be_created_and_round_trips_a_value(owner):
    owner.ok(owner.post("/tables", json={"api_name": "customers", "fields": [{"api_name": "name", "type": "text"}]}), 201)
    c = owner.ok(owner.post("/tables/customers/records", json={"name": "张三"}), 201)
    upload = owner.client.post("/api/v1/tenants/acme/attachments", data={"file": (__import__("io").BytesIO(b"hello"), "发票.pdf")},
                               headers={"X-CSRF-Token": owner.csrf}, content_type="multipart/form-data")
    token = upload.get_json()["token"]
    definition = {"api_name": "everything", "fields": [
        {"api_name": "t", "type": "text"}, {"api_name": "lt", "type": "long_text"},
        {"api_name": "n", "type": "number"}, {"api_name": "c", "type": "currency"}, {"api_name": "p", "type": "percent"},
        {"api_name": "b", "type": "boolean"}, {"api_name": "d", "type": "date"}, {"api_name": "dt", "type": "datetime"},
        {"api_name": "ss", "type": "single_select", "options": {"choices": [{"label": "红", "color": "red"}, {"label": "蓝"}]}},
        {"api_name": "ms", "type": "multi_select", "options": {"choices": [{"label": "A"}, {"label": "B"}]}},
        {"api_name": "an", "type": "autonumber", "options": {"pattern": "X{seq:03}"}},
        {"api_name": "ct", "type": "created_time"}, {"api_name": "mt", "type": "modified_time"},
        {"api_name": "cb", "type": "created_by"}, {"api_name": "mb", "type": "modified_by"},
        {"api_name": "em", "type": "email"}, {"api_name": "ph", "type": "phone"}, {"api_name": "u", "type": "url"},
        {"api_name": "ad", "type": "address"}, {"api_name": "j", "type": "json"},
        {"api_name": "cust", "type": "link", "options": {"target": "customers"}},
        {"api_name": "tags", "type": "link", "options": {"target": "customers", "relationship": "many_to_many"}},
        {"api_name": "lines", "type": "sub_table", "options": {"fields": [{"api_name": "x", "type": "number"}]}},
        {"api_name": "att", "type": "attachment"},
        {"api_name": "f", "type": "formula", "options": {"expression": "n * 2", "result_type": "number"}},
        {"api_name": "lk", "type": "lookup", "options": {"through": "cust", "field": "name"}},
        {"api_name": "ru", "type": "rollup", "options": {"through": "lines", "field": "x", "fn": "sum"}},
    ]}
    assert {f["type"] for f in definition["fields"]} == set(ft.names())  # every registered type is covered
    owner.ok(owner.post("/tables", json=definition), 201)
    rec = owner.ok(owner.post("/tables/everything/records", json={
        "t": "文本", "lt": "多行\n文本", "n": "1,234.5", "c": "¥99.995", "p": "25%", "b": "是", "d": "2026年11月21日",
        "dt": "2026-11-21T08:00:00Z", "ss": "红", "ms": "B, A", "em": "ops@example.com", "ph": "138 1234 5678",
        "u": "https://shop.example.com/a", "ad": {"province": "浙江省", "city": "杭州市", "detail": "文一西路 1 号"},
        "j": {"k": [1, 2]}, "cust": c["id"], "tags": [c["id"]], "lines": [{"x": 1}, {"x": 2}], "att": [token],
    }), 201)
    assert rec["n"] == 1234.5 and rec["c"] == 100.0 and rec["p"] == 0.25 and rec["b"] is True
    assert rec["d"] == "2026-11-21" and rec["dt"] == "2026-11-21T16:00:00+08:00"
    assert rec["ss"] == "红" and rec["ms"] == ["A", "B"]  # in option order
    assert rec["an"] == "X001" and rec["ct"] == rec["created_at"] and rec["cb"] == rec["created_by"]
    assert rec["ad"]["text"] == "浙江省杭州市文一西路 1 号" and rec["ad"]["map_url"].startswith("https://")
    assert rec["j"] == {"k": [1, 2]} and rec["cust"] == c["id"] and rec["tags"] == [c["id"]]
    assert [r["x"] for r in rec["lines"]] == [1, 2]
    assert rec["att"][0]["filename"] == "发票.pdf" and rec["att"][0]["size"] == 5
    # computed fields refuse values from users
    r = owner.post("/tables/everything/records", json={"f": 3})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/f"


@pytest.mark.parametrize("definition, pointer, words", [
    ({"api_name": "Bad Name"}, "/api_name", "lower-case"),
    ({"api_name": "t", "fields": [{"api_name": "x", "type": "colour"}]}, "/fields/0/type", "must be one of"),
    ({"api_name": "t", "fields": [{"api_name": "x", "type": "single_select", "options": {}}]}, "/fields/0/options", "'choices' is required"),
    ({"api_name": "t", "fields": [{"api_name": "x", "type": "text"}, {"api_name": "x", "type": "text"}]}, "/fields/1/api_name", "twice"),
    ({"api_name": "t", "fields": [{"api_name": "id", "type": "text"}]}, "/fields/0/api_name", "reserved"),
    ({"api_name": "t", "fields": [{"api_name": "c", "type": "link", "options": {"target": "nowhere"}}]}, "/fields/0/options/target", "no table"),
    ({"api_name": "t", "fields": [{"api_name": "a", "type": "autonumber", "options": {"pattern": "SO{YYYY}"}}]}, "/fields/0/options/pattern", "{seq}"),
    ({"api_name": "t", "fields": [{"api_name": "n", "type": "number", "default": "abc"}]}, "/fields/0/default", "not a number"),
])
def test_invalid_definitions_are_refused_naming_the_bad_part(owner, definition, pointer, words):
    r = owner.post("/tables", json=definition)
    assert r.status_code == 400, r.get_json()
    err = r.get_json()["error"]
    assert err["errors"][0]["pointer"] == pointer
    assert words in err["errors"][0]["message"]
    assert owner.ok(owner.get("/tables"))["tables"] == []  # nothing half-applied


def test_rename_field_and_option_keeps_data(owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"status": "已付款", "customer_name": "李四"}), 201)
    owner.ok(owner.patch("/tables/orders/fields/customer_name", json={"api_name": "buyer", "label": {"zh-CN": "买家", "en": "Buyer"}}))
    choices = next(f for f in orders["fields"] if f["api_name"] == "status")["options"]["choices"]
    renamed = [dict(c, label="已支付") if c["label"] == "已付款" else c for c in choices]
    owner.ok(owner.patch("/tables/orders/fields/status", json={"options": {"choices": renamed}}))
    got = owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))
    assert got["buyer"] == "李四" and "customer_name" not in got
    assert got["status"] == "已支付"


def test_removing_an_option_in_use_is_refused(owner, orders):
    owner.ok(owner.post("/tables/orders/records", json={"channel": "抖音"}), 201)
    choices = next(f for f in orders["fields"] if f["api_name"] == "channel")["options"]["choices"]
    r = owner.patch("/tables/orders/fields/channel", json={"options": {"choices": [c for c in choices if c["label"] != "抖音"]}})
    assert r.status_code == 409 and "抖音 (1)" in r.get_json()["error"]["message"]


def test_retyping_a_field_converts_values_and_reports_the_ones_that_cannot(owner, orders):
    for t in ["12.5", "abc", None, "7"]:
        owner.ok(owner.post("/tables/orders/records", json={"tracking_no": t}), 201)
    preview = owner.ok(owner.patch("/tables/orders/fields/tracking_no?dry_run=true", json={"type": "number"}))
    assert preview["conversion"]["failed"] == 1 and preview["conversion"]["converted"] == 2
    assert next(f for f in owner.ok(owner.get("/tables/orders"))["table"]["fields"] if f["api_name"] == "tracking_no")["type"] == "text"
    done = owner.ok(owner.patch("/tables/orders/fields/tracking_no", json={"type": "number"}))
    assert done["conversion"]["failures"][0]["value"] == "abc"
    values = [r["tracking_no"] for r in owner.ok(owner.get("/tables/orders/records?sort=id"))["records"]]
    assert values == [12.5, None, None, 7]
    # numbers now sort and filter as numbers
    big = owner.ok(owner.get('/tables/orders/records?filter={"field":"tracking_no","op":">","value":10}'))["records"]
    assert [r["tracking_no"] for r in big] == [12.5]


def test_adding_deleting_and_restoring_a_field_on_a_table_with_data(owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "王五"}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "remark", "type": "long_text", "label": "备注"}), 201)
    owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"remark": "放门口"}))
    owner.ok(owner.delete("/tables/orders/fields/remark"))
    assert "remark" not in owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))
    deleted = owner.ok(owner.get("/tables/orders/deleted-fields"))["fields"]
    owner.ok(owner.post(f"/tables/orders/fields/{deleted[0]['id']}/restore"))
    assert owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))["remark"] == "放门口"


def test_dropping_a_table_is_restorable(owner, orders):
    owner.ok(owner.post("/tables/orders/records", json={"customer_name": "赵六"}), 201)
    owner.ok(owner.delete("/tables/orders"))
    assert owner.get("/tables/orders/records").status_code == 404
    tid = owner.ok(owner.get("/deleted-tables"))["tables"][0]["id"]
    owner.ok(owner.post(f"/tables/{tid}/restore"))
    assert owner.ok(owner.get("/tables/orders/records"))["records"][0]["customer_name"] == "赵六"


def test_schemas_are_published_for_clients_to_validate_before_sending(app):
    c = app.test_client()
    index = c.get("/api/v1/schemas").get_json()["schemas"]
    assert set(index) >= {"table", "field", "view", "dashboard", "filter"}
    field_schema = c.get("/api/v1/schemas/field.json").get_json()
    assert field_schema["$schema"].endswith("2020-12/schema")
    assert set(field_schema["properties"]["type"]["enum"]) == set(ft.names())
