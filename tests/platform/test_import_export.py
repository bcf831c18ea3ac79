"""Spreadsheet import and export: what an operations team does with Excel and an orders table.

Export:  GET  /tables/<table>/export?format=csv|xlsx&view=&filter=&fields=&header=label|api_name
Import:  POST /tables/<table>/import   (multipart: file, mapping, skip_invalid, dry_run)
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest

from tests.conftest import ORDERS

SYSTEM = {"id", "version", "created_at", "updated_at", "created_by", "updated_by", "order_no"}


def add_orders(api, table="orders"):
    """Three orders with Chinese text, selects, datetimes, money, an address and item lines."""
    return api.ok(api.post(f"/tables/{table}/records", json={"records": [
        {"channel": "抖音", "customer_name": "张三", "phone": "13812345678", "amount": "520.00", "paid": 0,
         "status": "已付款", "created": "2026-11-21 10:00", "weight": 1.25, "address": "浙江省杭州市西湖区文三路 1 号",
         "vip": True, "tags": ["加急", "赠品"],
         "items": [{"sku": "A1", "category": "连体衣", "qty": 2, "unit_price": 99.5}, {"sku": "B2", "qty": 1}]},
        {"channel": "天猫", "customer_name": "李四, \"老客户\"", "amount": 88.8, "created": "2026-11-22T23:30:00+08:00",
         "tracking_no": "=HYPERLINK(\"x\")", "vip": False},
        {"channel": "小程序", "customer_name": "王五\n第二行", "amount": 0.01, "tags": ["风险"]},
    ]}), 201)["records"]


@pytest.fixture
def copy(owner, orders):
    """An empty table with the same fields as orders, to import into."""
    return owner.ok(owner.post("/tables", json={**ORDERS, "api_name": "orders_copy", "label": "订单副本"}), 201)["table"]


def business_values(rec):
    """A record without ids, numbers and times that the system assigns."""
    out = {k: v for k, v in rec.items() if k not in SYSTEM}
    out["items"] = [{k: v for k, v in i.items() if k not in SYSTEM | {"parent_id", "position"}} for i in rec.get("items", [])]
    return out


def all_records(api, table):
    return api.ok(api.get(f"/tables/{table}/records?limit=1000&expand=all&sort=id"))["records"]


def upload(api, data: bytes, filename: str = "orders.csv", table: str = "orders", **form):
    fields = {"file": (io.BytesIO(data), filename)}
    for k, v in form.items():
        fields[k] = json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else str(v).lower()
    return api.post(f"/tables/{table}/import", data=fields, content_type="multipart/form-data")


def csv_bytes(rows, encoding="utf-8-sig") -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


def read_csv(resp) -> list[list[str]]:
    raw = resp.get_data()
    assert raw.startswith(codecs.BOM_UTF8)  # so that Excel opens Chinese text correctly
    return list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))


# -- export --------------------------------------------------------------------------------

def test_csv_export_has_labels_spreadsheet_values_and_a_chinese_file_name(owner, orders):
    add_orders(owner)
    r = owner.get("/tables/orders/export?format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == \
        "attachment; filename=\"orders.csv\"; filename*=UTF-8''%E8%AE%A2%E5%8D%95.csv"  # 订单.csv (RFC 5987)
    rows = read_csv(r)
    assert rows[0] == ["订单编号", "渠道", "客户", "电话", "应收", "实收", "订单状态", "物流单号", "下单时间", "重量",
                       "地址", "VIP", "标签", "商品明细"]
    first = dict(zip(rows[0], rows[1]))
    assert first["渠道"] == "抖音" and first["订单状态"] == "已付款"  # select labels
    assert first["应收"] == "520.00" and first["实收"] == "0.00"  # money with its decimals
    assert first["下单时间"] == "2026-11-21 10:00:00"  # in the tenant's timezone (Asia/Shanghai)
    assert first["标签"] == "加急, 赠品" and first["VIP"] == "是" and first["重量"] == "1.25"
    assert first["地址"] == "浙江省杭州市西湖区文三路 1 号"
    assert first["商品明细"] == "sku: A1; category: 连体衣; qty: 2; unit_price: 99.50\nsku: B2; qty: 1"
    second = dict(zip(rows[0], rows[2]))
    assert second["客户"] == "李四, \"老客户\"" and second["下单时间"] == "2026-11-22 23:30:00"
    assert second["物流单号"] == "'=HYPERLINK(\"x\")"  # never run as a formula by a spreadsheet
    assert len(rows) == 4


def test_export_pages_through_every_record(owner, orders, monkeypatch):
    from zhongshu.platform import importexport

    pages = []
    list_page = importexport.Records.list
    monkeypatch.setattr(importexport, "EXPORT_PAGE", 2)
    monkeypatch.setattr(importexport.Records, "list", lambda self, schema, q, **kw: pages.append(q.cursor) or list_page(self, schema, q, **kw))
    owner.ok(owner.post("/tables/orders/records", json={"records": [{"customer_name": f"客户{i}"} for i in range(7)]}), 201)
    rows = read_csv(owner.get("/tables/orders/export?fields=customer_name"))
    assert [r[0] for r in rows[1:]] == [f"客户{i}" for i in range(7)]
    assert len(pages) == 1 + 4 and pages[1] is None and all(pages[2:])  # a probe, then 4 pages of 2 by keyset cursor


def test_export_chooses_fields_header_filter_and_sort(owner, orders):
    add_orders(owner)
    r = owner.get("/tables/orders/export?fields=id,customer_name,amount&header=api_name&sort=-amount"
                  "&filter=" + json.dumps({"field": "amount", "op": ">", "value": 1}))
    rows = read_csv(r)
    assert rows[0] == ["id", "customer_name", "amount"]
    assert [row[1:] for row in rows[1:]] == [["张三", "520.00"], ["李四, \"老客户\"", "88.80"]]

    bad = owner.get("/tables/orders/export?fields=customer_name,nope")
    assert bad.status_code == 400 and bad.get_json()["error"]["errors"][0]["pointer"] == "/fields/1"
    assert owner.get("/tables/orders/export?format=pdf").status_code == 400
    assert owner.get("/tables/orders/export?filter=" + json.dumps({"field": "nope", "op": "=", "value": 1})).status_code == 400


def test_view_export_uses_the_views_filter_sorts_and_visible_fields(owner, orders):
    add_orders(owner)
    owner.ok(owner.post("/tables/orders/views", json={
        "api_name": "big", "label": "大单", "type": "grid", "fields": ["amount", "customer_name"],
        "filter": {"field": "amount", "op": ">=", "value": 50}, "sorts": [{"field": "amount", "direction": "asc"}]}), 201)
    r = owner.get("/tables/orders/export?view=big")
    assert "filename*=UTF-8''%E8%AE%A2%E5%8D%95-%E5%A4%A7%E5%8D%95.csv" in r.headers["Content-Disposition"]  # 订单-大单.csv
    assert read_csv(r) == [["应收", "客户"], ["88.80", "李四, \"老客户\""], ["520.00", "张三"]]


def test_xlsx_export_keeps_numbers_dates_and_puts_item_lines_on_a_second_sheet(owner, orders):
    add_orders(owner)
    r = owner.get("/tables/orders/export?format=xlsx")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "filename*=UTF-8''%E8%AE%A2%E5%8D%95.xlsx" in r.headers["Content-Disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.get_data()))
    assert wb.sheetnames == ["订单", "商品明细"]
    ws = wb["订单"]
    header = [c.value for c in ws[1]]
    first = dict(zip(header, [c.value for c in ws[2]]))
    assert first["应收"] == 520 and ws.cell(2, header.index("应收") + 1).number_format == "#,##0.00"  # a number, not text
    assert first["下单时间"] == datetime(2026, 11, 21, 10, 0)  # tenant-local time, as Excel shows it
    assert first["VIP"] is True and first["标签"] == "加急, 赠品"
    second = dict(zip(header, [c.value for c in ws[3]]))
    assert second["物流单号"] == "=HYPERLINK(\"x\")" and ws.cell(3, header.index("物流单号") + 1).data_type == "s"  # text, not a formula
    items = [[c.value for c in row] for row in wb["商品明细"].iter_rows()]
    assert items == [["主表行号", "sku", "category", "qty", "unit_price"],
                     [2, "A1", "连体衣", 2, 99.5], [2, "B2", None, 1, None]]


def test_hidden_fields_are_never_exported(owner, orders, make_member):
    add_orders(owner)
    owner.ok(owner.patch("/tables/orders", json={"permissions": {"member": {"fields": {"phone": "hidden"}}}}))
    member = make_member("member")
    rows = read_csv(member.get("/tables/orders/export"))
    assert "电话" not in rows[0] and "客户" in rows[0]
    assert not any("13812345678" in cell for row in rows for cell in row)
    wb = openpyxl.load_workbook(io.BytesIO(member.get("/tables/orders/export?format=xlsx").get_data()))
    assert "电话" not in [c.value for c in wb.worksheets[0][1]]
    asked = member.get("/tables/orders/export?fields=customer_name,phone")
    assert asked.status_code == 400 and "phone" not in asked.get_json()["error"]["message"].split(";")[1]
    # ... and cannot be filled by an import either
    r = upload(member, csv_bytes([["客户", "电话"], ["赵六", "13900000000"]]), mapping={"电话": "phone"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_mapping"


# -- round trips ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_into_an_empty_copy_gives_the_same_values(owner, orders, copy, fmt):
    originals = add_orders(owner)
    exported = owner.get(f"/tables/orders/export?format={fmt}")
    report = owner.ok(upload(owner, exported.get_data(), f"订单.{fmt}", table="orders_copy"), 201)
    assert report["created"] == 3 and report["errors"] == [] and report["format"] == fmt
    # the autonumber column is reported, not silently dropped: the copy numbers its own orders
    assert report["unmapped_columns"] == [{"column": "订单编号", "letter": "A", "reason": "'order_no' is computed or filled by the system",
                                           "reason_zh": "'order_no' 是自动计算或系统填写的字段"}]
    copied = all_records(owner, "orders_copy")
    assert [business_values(r) for r in copied] == [business_values(r) for r in originals]
    assert copied[0]["created"] == "2026-11-21T10:00:00+08:00" and copied[0]["amount"] == 520.0
    assert copied[1]["tracking_no"] == "=HYPERLINK(\"x\")"


def test_round_trip_with_api_name_headers(owner, orders, copy):
    originals = add_orders(owner)
    exported = owner.get("/tables/orders/export?header=api_name").get_data()
    owner.ok(upload(owner, exported, table="orders_copy"), 201)
    assert [business_values(r) for r in all_records(owner, "orders_copy")] == [business_values(r) for r in originals]


# -- import: matching columns to fields ------------------------------------------------------

def test_headers_match_chinese_labels_and_unknown_columns_are_reported(owner, orders):
    data = csv_bytes([["客户", " 渠道 ", "应收", "下单时间", "备注"],
                      ["张三", "抖音", "¥1,234.50", "2026/11/21 14:30", "老客户"],
                      ["李四", "天猫", "99", "", ""]])
    report = owner.ok(upload(owner, data), 201)
    assert report["created"] == 2 and report["rows"] == 2
    assert report["columns"] == [
        {"column": "客户", "letter": "A", "field": "customer_name"}, {"column": "渠道", "letter": "B", "field": "channel"},
        {"column": "应收", "letter": "C", "field": "amount"}, {"column": "下单时间", "letter": "D", "field": "created"}]
    assert report["unmapped_columns"] == [{"column": "备注", "letter": "E", "reason": "no field has this name or label",
                                           "reason_zh": "没有同名的字段"}]
    recs = all_records(owner, "orders")
    assert [(r["customer_name"], r["channel"], r["amount"], r["created"], r["status"]) for r in recs] == [
        ("张三", "抖音", 1234.5, "2026-11-21T14:30:00+08:00", "待付款"),  # empty cells take the field's default
        ("李四", "天猫", 99.0, None, "待付款")]


def test_headers_match_api_names_case_insensitively_and_labels_in_any_locale(owner, orders):
    owner.ok(owner.patch("/tables/orders/fields/tracking_no", json={"label": {"zh-CN": "物流单号", "en": "Tracking number"}}))
    data = csv_bytes([["CUSTOMER_NAME", "tracking number"], ["张三", "SF123"]])
    report = owner.ok(upload(owner, data), 201)
    assert [c["field"] for c in report["columns"]] == ["customer_name", "tracking_no"]


def test_a_mapping_names_the_field_of_each_column(owner, orders):
    data = csv_bytes([["买家", "手机", "平台", "内部备注"], ["张三", "13812345678", "抖音", "不要导入"]])
    report = owner.ok(upload(owner, data, mapping={"买家": "customer_name", "手机": "phone", "内部备注": None}), 201)
    assert [(c["column"], c["field"]) for c in report["columns"]] == [("买家", "customer_name"), ("手机", "phone")]
    assert [(u["column"], u["reason"]) for u in report["unmapped_columns"]] == [
        ("平台", "no field has this name or label"), ("内部备注", "left out by the mapping")]
    rec = all_records(owner, "orders")[0]
    assert (rec["customer_name"], rec["phone"], rec["channel"]) == ("张三", "13812345678", None)


@pytest.mark.parametrize("mapping, pointer, words", [
    ({"客户": "nope"}, "/mapping/客户", "unknown field 'nope'"),
    ({"客户": "order_no"}, "/mapping/客户", "'order_no' is computed"),
    ({"不存在的列": "customer_name"}, "/mapping/不存在的列", "the file has no column '不存在的列'"),
    ({"电话": "customer_name"}, "/mapping/电话", "all go to field 'customer_name'"),
])
def test_a_bad_mapping_is_refused_with_what_is_wrong(owner, orders, mapping, pointer, words):
    r = upload(owner, csv_bytes([["客户", "电话"], ["张三", "13812345678"]]), mapping=mapping)
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == "bad_mapping" and err["errors"][0]["pointer"] == pointer and words in err["errors"][0]["message"]
    assert all_records(owner, "orders") == []


def test_mapping_must_be_json(owner, orders):
    r = owner.post("/tables/orders/import", data={"file": (io.BytesIO(b"a\n1\n"), "a.csv"), "mapping": "{客户"},
                   content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_mapping"


# -- import: errors, all-or-nothing, skip_invalid, dry run ---------------------------------------

BAD_FILE = [["客户", "渠道", "应收", "商品明细"],
            ["张三", "抖音", "10", "sku: A1; qty: 1"],
            ["李四", "京东", "abc", ""],              # row 3: two bad cells
            ["王五", "天猫", "20", "qty: 2"],         # row 4: an item line without its required sku
            ["赵六", "小程序", "30", "颜色: 红"]]      # row 5: an item column that does not exist


def test_a_bad_row_makes_an_all_or_nothing_import_save_nothing_and_report_every_row(owner, orders):
    r = upload(owner, csv_bytes(BAD_FILE))
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == "import_failed" and err["created"] == 0 and err["rows"] == 4 and err["invalid"] == 3
    assert "nothing was imported" in err["message"] and "未导入任何数据" in err["message_zh"]
    got = [(e["row"], e["column"], e["letter"]) for e in err["errors"]]
    assert got == [(3, "渠道", "B"), (3, "应收", "C"), (4, "商品明细", "D"), (5, "商品明细", "D")]
    channel = err["errors"][0]
    assert "'京东' is not an option" in channel["message"] and "不是可选项" in channel["message_zh"]
    assert "sku" in err["errors"][2]["message"] and "line 1" in err["errors"][2]["message"]
    assert "颜色" in err["errors"][3]["message"]
    assert all_records(owner, "orders") == []


def test_skip_invalid_saves_the_good_rows_and_reports_the_others(owner, orders):
    report = owner.ok(upload(owner, csv_bytes(BAD_FILE), skip_invalid=True), 201)
    assert (report["created"], report["skipped"], report["invalid"], report["valid"]) == (1, 3, 3, 1)
    assert sorted({e["row"] for e in report["errors"]}) == [3, 4, 5]
    recs = all_records(owner, "orders")
    assert [(r["customer_name"], [i["sku"] for i in r["items"]]) for r in recs] == [("张三", ["A1"])]


def test_skip_invalid_with_no_good_row_fails(owner, orders):
    r = upload(owner, csv_bytes([["渠道"], ["京东"]]), skip_invalid=True)
    assert r.status_code == 400 and r.get_json()["error"]["invalid"] == 1


def test_dry_run_validates_everything_and_creates_nothing(owner, orders):
    report = owner.ok(upload(owner, csv_bytes(BAD_FILE), dry_run=True), 200)
    assert report["dry_run"] is True and report["ok"] is False and report["would_create"] == 0
    assert len(report["errors"]) == 4
    good = owner.ok(upload(owner, csv_bytes(BAD_FILE[:2]), dry_run=True), 200)
    assert good["ok"] is True and good["would_create"] == 1 and good["created"] == 0
    assert all_records(owner, "orders") == []
    # the autonumber sequence was not used up by the dry run
    assert owner.ok(owner.post("/tables/orders/records", json={}), 201)["order_no"].endswith("00001")


def test_rows_are_saved_in_chunks_within_one_transaction(owner, orders, app, monkeypatch):
    from zhongshu.platform import importexport

    batches = []
    create_many = importexport.Records.create_many
    monkeypatch.setattr(importexport.Records, "create_many",
                        lambda self, schema, rows, **kw: batches.append(len(rows)) or create_many(self, schema, rows, **kw))
    app.config["IMPORT_CHUNK_ROWS"] = 3  # 1,000 by default
    rows = [["客户", "应收"]] + [[f"客户{i}", str(i)] for i in range(10)]
    assert owner.ok(upload(owner, csv_bytes(rows)), 201)["created"] == 10
    assert batches == [3, 3, 3, 1]
    rows.append(["坏行", "abc"])  # row 12 fails, so the 10 rows of the earlier chunks are not saved either
    r = upload(owner, csv_bytes(rows))
    assert r.status_code == 400 and [e["row"] for e in r.get_json()["error"]["errors"]] == [12]
    assert len(all_records(owner, "orders")) == 10


def test_a_unique_value_already_taken_is_reported_on_its_row(owner):
    owner.ok(owner.post("/tables", json={"api_name": "skus", "label": "商品", "fields": [
        {"api_name": "code", "type": "text", "label": "编码", "unique": True}, {"api_name": "name", "type": "text", "label": "名称"}]}), 201)
    owner.ok(owner.post("/tables/skus/records", json={"code": "A1", "name": "连体衣"}), 201)
    data = csv_bytes([["编码", "名称"], ["B2", "袜子"], ["A1", "重复的连体衣"], ["C3", "帽子"]])
    r = upload(owner, data, table="skus")
    assert r.status_code == 400
    assert [(e["row"], e["code"]) for e in r.get_json()["error"]["errors"]] == [(3, "conflict")]
    report = owner.ok(upload(owner, data, table="skus", skip_invalid=True), 201)
    assert (report["created"], report["skipped"]) == (2, 1)
    assert sorted(r["code"] for r in all_records(owner, "skus")) == ["A1", "B2", "C3"]


def test_too_many_rows_are_refused(owner, orders, app):
    app.config["IMPORT_MAX_ROWS"] = 3
    r = upload(owner, csv_bytes([["客户"]] + [[f"客户{i}"] for i in range(4)]))
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "too_many_rows"
    assert all_records(owner, "orders") == []


# -- import: files -------------------------------------------------------------------------

def test_gb18030_csv_from_an_old_excel_is_read(owner, orders):
    data = csv_bytes([["客户", "渠道", "地址"], ["张三", "拼多多", "广东省深圳市南山区"]], encoding="gb18030")
    report = owner.ok(upload(owner, data), 201)
    assert report["encoding"] == "gb18030"
    rec = all_records(owner, "orders")[0]
    assert (rec["customer_name"], rec["channel"], rec["address"]["text"]) == ("张三", "拼多多", "广东省深圳市南山区")


def test_utf8_without_bom_and_semicolons_are_read(owner, orders):
    report = owner.ok(upload(owner, "客户;应收\n张三;12.5\n".encode()), 201)
    assert report["encoding"] == "utf-8" and report["created"] == 1


def test_xlsx_typed_cells_are_imported(owner, orders):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["客户", "电话", "应收", "下单时间", "VIP", "标签", "重量"])
    ws.append(["张三", 13812345678, 19.9, datetime(2026, 11, 21, 9, 5), True, "加急，风险", 3])
    ws.append([None, None, None, None, None, None, None])  # blank rows are not records
    ws.append(["李四", "13900000000", Decimal("5"), date(2026, 1, 2), "否", None, None])
    out = io.BytesIO()
    wb.save(out)
    report = owner.ok(upload(owner, out.getvalue(), "orders.xlsx"), 201)
    assert report["created"] == 2 and report["rows"] == 2
    a, b = all_records(owner, "orders")
    assert (a["phone"], a["amount"], a["created"], a["vip"], a["tags"], a["weight"]) == \
        ("13812345678", 19.9, "2026-11-21T09:05:00+08:00", True, ["加急", "风险"], 3)
    assert (b["created"], b["vip"]) == ("2026-01-02T00:00:00+08:00", False)


def test_row_numbers_in_xlsx_reports_count_blank_rows(owner, orders):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["客户", "渠道"])
    ws.append(["张三", "抖音"])
    ws.append([None, None])
    ws.append(["李四", "京东"])
    out = io.BytesIO()
    wb.save(out)
    r = upload(owner, out.getvalue(), "orders.xlsx")
    assert [(e["row"], e["column"]) for e in r.get_json()["error"]["errors"]] == [(4, "渠道")]


@pytest.mark.parametrize("data, filename, status, code", [
    (b"", "orders.csv", 400, "empty_file"),
    (b"\xef\xbb\xbf\r\n", "orders.csv", 400, "empty_file"),
    (b"\xef\xbb\xbf\xe5\xae\xa2\xe6\x88\xb7\r\n", "orders.csv", 400, "no_rows"),  # a header (客户) and nothing else
    (b",,\r\n1,2,3\r\n", "orders.csv", 400, "missing_header"),
    ("客户,客户\n张三,李四\n".encode(), "orders.csv", 400, "duplicate_header"),
    ("备注\n随便\n".encode(), "orders.csv", 400, "nothing_to_import"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "orders.csv", 415, "not_a_spreadsheet"),
    (b"\x00\x01\x02binary", "data.bin", 415, "not_a_spreadsheet"),
    (b"PK\x03\x04 not really a zip", "orders.xlsx", 415, "not_a_spreadsheet"),
    (b"just,text", "orders.xlsx", 415, "not_a_spreadsheet"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "orders.xls", 415, "unsupported_format"),
])
def test_bad_files_are_refused_with_a_clear_message(owner, orders, data, filename, status, code):
    r = upload(owner, data, filename)
    assert r.status_code == status, r.get_data(as_text=True)
    err = r.get_json()["error"]
    assert err["code"] == code and err["message"] and err["message_zh"]


def test_a_file_over_the_size_limit_is_refused(owner, orders, app):
    app.config["ATTACHMENT_MAX_BYTES"] = 1000
    r = upload(owner, csv_bytes([["客户"]] + [["张三" * 10]] * 100))
    assert r.status_code == 413
    assert r.get_json()["error"]["code"] == "too_large" and "1000 bytes" in r.get_json()["error"]["message"]


def test_import_needs_a_file(owner, orders):
    r = owner.post("/tables/orders/import", data={"skip_invalid": "true"}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/file"


def test_a_viewer_can_export_but_not_import(owner, orders, make_member):
    add_orders(owner)
    viewer = make_member("viewer")
    assert viewer.get("/tables/orders/export").status_code == 200
    r = upload(viewer, csv_bytes([["客户"], ["张三"]]))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    assert len(all_records(owner, "orders")) == 3
