"""File drop: CSV and Excel orders, per-row errors, folder pull that resumes exactly."""
import json

import openpyxl
import pytest

from zhongshu.connectors.api import PayloadError
from zhongshu.connectors.file_drop import FileDropConnector, parse_file

CSV = """订单号,渠道,客户,下单时间,SKU,商品名称,数量,单价,应收金额
A001,拼多多,王芳,2024-06-18 10:00:00,R-80,连体衣,2,59.5,119
A001,拼多多,王芳,2024-06-18 10:00:00,BAG,保温袋,1,0,119
A002,天猫,李雷,2024-06-18 11:00:00,R-90,连体衣,abc,59.5,59.5
,天猫,无名,2024-06-18 11:00:00,R-90,连体衣,1,59.5,59.5
A003,天猫,韩梅梅,not a date,R-90,连体衣,1,59.5,59.5
A004,天猫,韩梅梅,2024-06-18 12:00:00,R-90,连体衣,1,59.5,59.5
"""


def test_csv_rows_become_orders_and_bad_rows_are_listed_without_dropping_others():
    result = parse_file("orders.csv", CSV.encode("utf-8-sig"))
    assert [(e.external_id, e.channel) for e in result.events] == [("A001", "拼多多"), ("A004", "天猫")]
    a001 = result.events[0]
    assert [i["SKU"] for i in a001.payload["items"]] == ["R-80", "BAG"]
    assert a001.payload["items"][0]["数量"] == 2 and a001.occurred_at.isoformat() == "2024-06-18T02:00:00+00:00"
    assert [(e["row"], e["column"]) for e in result.errors] == [(4, "数量"), (5, "订单号"), (6, "下单时间")]
    (rec,) = FileDropConnector().map_event(a001, tz="Asia/Shanghai")
    assert rec.values["external_id"] == "A001" and len(rec.subtables["items"]) == 2


def test_gbk_csv_and_excel_files(tmp_path):
    gbk = parse_file("orders.csv", CSV.encode("gb18030"))
    assert [e.external_id for e in gbk.events] == ["A001", "A004"]
    wb = openpyxl.Workbook()
    ws = wb.active
    import datetime
    ws.append(["订单号", "渠道", "下单时间", "SKU", "数量", "单价"])
    ws.append([1001, "POS", datetime.datetime(2024, 6, 18, 9, 0), "R-80", 1, 59.5])
    ws.append([1002, "POS", datetime.datetime(2024, 6, 18, 9, 5), "R-90", "两件", 59.5])
    path = tmp_path / "pos.xlsx"
    wb.save(path)
    result = parse_file("pos.xlsx", path.read_bytes())
    assert [e.external_id for e in result.events] == ["1001"]
    assert result.events[0].payload["下单时间"] == "2024-06-18T01:00:00+00:00"
    assert result.errors == [{"row": 3, "column": "数量", "message": "expected a number, got '两件'"}]


def test_unreadable_files_are_clear_errors():
    with pytest.raises(PayloadError, match="not a readable .xlsx"):
        parse_file("x.xlsx", b"garbage")
    with pytest.raises(PayloadError, match="no column '订单号'"):
        parse_file("x.csv", "a,b\n1,2\n".encode())
    with pytest.raises(PayloadError, match="unsupported"):
        parse_file("x.pdf", b"%PDF")


def test_folder_pull_resumes_from_the_saved_cursor_without_duplicates_or_gaps(tmp_path):
    (tmp_path / "1.csv").write_text(CSV, encoding="utf-8")
    rows = "订单号,渠道,SKU,数量\n" + "".join(f"B{i:03},小程序,R,1\n" for i in range(5))
    (tmp_path / "2.csv").write_text(rows, encoding="utf-8")
    cfg = {"directory": str(tmp_path), "page_size": 2}
    fd = FileDropConnector()
    got, errors, cursor = [], [], None
    page = fd.pull(cfg, {}, cursor)
    got += [e.external_id for e in page.events]
    errors += page.errors
    cursor = json.loads(json.dumps(page.next_cursor))  # saved; process restarts
    while True:
        page = FileDropConnector().pull(cfg, {}, cursor)
        got += [e.external_id for e in page.events]
        errors += page.errors
        cursor = page.next_cursor
        if not page.has_more:
            break
    assert got == ["A001", "A004", "B000", "B001", "B002", "B003", "B004"]
    assert len(errors) == 3 and all(e["file"] == "1.csv" for e in errors)
    assert fd.pull(cfg, {}, cursor).events == []  # nothing new
    (tmp_path / "2.csv").write_text(rows + "B005,小程序,R,1\n", encoding="utf-8")  # file replaced
    assert [e.external_id for e in fd.pull(dict(cfg, page_size=10), {}, cursor).events][-1] == "B005"


def test_upload_through_parse_webhook():
    events = FileDropConnector().parse_webhook({"X-Filename": "o.csv"}, CSV.encode(), {})
    assert len(events) == 2
