"""File drop: orders from CSV / Excel files.

Each row is one order line; rows sharing the order id (``id_column``) form one
``order.created`` event whose payload holds the order columns (from the first good row)
and ``items`` (the ``item_columns`` of every good row). A bad row (no order id, a value
that is not a number in a ``numeric_columns`` column, an unparseable date) is reported in
the per-row error list with its spreadsheet row number and column — and never drops the
other rows.

Two ways in: upload (``parse_file(name, bytes, config)`` or ``parse_webhook`` with header
``X-Filename``) and a watched folder (``pull``; the cursor remembers finished files by
name + SHA-256 and the position inside the current file, so a resumed pull neither
repeats nor skips an order). CSV encoding: UTF-8 (with or without BOM), else GB18030.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..api import (ORDER_CREATED, ConfigError, Connector, InboundEvent, Manifest, PayloadError, PullPage,
                   apply_defaults, header)
from ..api.mapping import _StepError, _num_out, _to_decimal, parse_datetime
from ..api.signing import icon

MANIFEST = {
    "name": "file_drop",
    "version": "1.0.0",
    "labels": {"zh-CN": "文件导入 (CSV/Excel)", "en": "File drop (CSV/Excel)"},
    "description": {"zh-CN": "从 CSV 或 Excel 文件导入订单，逐行报告错误，坏行不影响其他行。",
                    "en": "Import orders from CSV or Excel files with a per-row error list."},
    "icon": icon("表", "#16a34a"),
    "categories": ["inbound", "files"],
    "config_schema": {"type": "object", "properties": {
        "channel": {"type": "string", "default": "文件导入", "description": "Channel when no channel column"},
        "channel_column": {"type": "string", "default": "渠道"},
        "id_column": {"type": "string", "default": "订单号"},
        "created_column": {"type": "string", "default": "下单时间"},
        "item_columns": {"type": "array", "items": {"type": "string"},
                         "default": ["SKU", "商品名称", "数量", "单价"]},
        "numeric_columns": {"type": "array", "items": {"type": "string"},
                            "default": ["数量", "单价", "应收金额", "实收金额"]},
        "datetime_columns": {"type": "array", "items": {"type": "string"}, "default": ["下单时间", "支付时间"]},
        "source_tz": {"type": "string", "default": "Asia/Shanghai"},
        "sheet": {"type": "string", "default": "", "description": "Excel sheet (empty: the first)"},
        "directory": {"type": "string", "default": "", "description": "Watched folder for pull"},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 5000, "default": 500}}},
    "credential_schema": {"type": "object", "properties": {}},
    "inbound": [{"kind": "webhook", "event_types": [ORDER_CREATED], "description": "Upload a file"},
                {"kind": "pull", "event_types": [ORDER_CREATED], "default_interval_seconds": 300,
                 "description": "Files dropped in a folder"}],
    "actions": [],
    "mappings": [{
        "name": "file_orders", "table": "orders", "key": ["global_id"],
        "fields": {"external_id": {"path": "$.订单号", "transform": "to_string", "required": True},
                   "channel": "$.渠道", "customer_name": "$.客户", "receiver_phone": "$.电话",
                   "address": "$.地址", "amount_due": "$.应收金额", "amount_paid": "$.实收金额",
                   "created": {"path": "$.下单时间"}},
        "subtables": {"items": {"path": "$.items[*]", "fields": {
            "sku": "@.SKU", "product_name": "@.商品名称", "qty": {"path": "@.数量", "transform": "to_integer"},
            "unit_price": "@.单价"}}}}],
    "connection_test": {"supported": False},
}


@dataclass
class FileParseResult:
    events: list[InboundEvent]
    errors: list[dict] = field(default_factory=list)  # {"row": n, "column": c|None, "message": …}
    rows: int = 0


def _read_rows(filename: str, data: bytes, cfg: dict) -> list[tuple[int, dict]]:
    name = filename.lower()
    if name.endswith(".xlsx"):
        import openpyxl
        try:
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - zipfile/openpyxl raise many kinds
            raise PayloadError(f"{filename}: not a readable .xlsx file ({type(exc).__name__}: {exc})") from None
        try:
            ws = wb[cfg["sheet"]] if cfg["sheet"] else wb.worksheets[0]
        except KeyError:
            raise ConfigError(f"{filename}: no sheet named {cfg['sheet']!r}", path="config/sheet") from None
        it = ws.iter_rows(values_only=True)
        headers = [str(h).strip() if h is not None else "" for h in next(it, [])]
        rows = []
        for n, values in enumerate(it, start=2):
            if values is None or all(v is None or v == "" for v in values):
                continue
            rows.append((n, {h: v for h, v in zip(headers, values) if h}))
        wb.close()
        return rows
    if name.endswith((".csv", ".txt")):
        for enc in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:  # pragma: no cover - gb18030 decodes almost anything
            raise PayloadError(f"{filename}: unknown text encoding")
        reader = csv.reader(io.StringIO(text, newline=""))
        headers = [h.strip() for h in next(reader, [])]
        rows = []
        for values in reader:
            n = reader.line_num
            if not any(v.strip() for v in values):
                continue
            rows.append((n, {h: (v.strip() if isinstance(v, str) else v) for h, v in zip(headers, values) if h}))
        return rows
    raise PayloadError(f"{filename}: unsupported file type (use .csv or .xlsx)")


def parse_file(filename: str, data: bytes, config: dict | None = None) -> FileParseResult:
    cfg = apply_defaults(MANIFEST["config_schema"], config)
    rows = _read_rows(filename, data, cfg)
    if rows and cfg["id_column"] not in rows[0][1]:
        raise PayloadError(f"{filename}: no column {cfg['id_column']!r} (columns: {list(rows[0][1])})")
    digest = hashlib.sha256(data).hexdigest()[:16]
    orders: dict[str, dict] = {}
    errors: list[dict] = []
    for n, row in rows:
        problems = []
        oid = row.get(cfg["id_column"])
        oid = str(_num_out(_to_decimal(oid))) if isinstance(oid, (int, float)) and not isinstance(oid, bool) else oid
        if oid in (None, ""):
            problems.append({"row": n, "column": cfg["id_column"], "message": "order id is empty"})
        clean = dict(row)
        for col in cfg["numeric_columns"]:
            v = row.get(col)
            if v not in (None, ""):
                try:
                    clean[col] = _num_out(_to_decimal(v))
                except _StepError as exc:
                    problems.append({"row": n, "column": col, "message": str(exc)})
        for col in cfg["datetime_columns"]:
            v = row.get(col)
            if v not in (None, ""):
                try:
                    clean[col] = parse_datetime(v, source_tz=cfg["source_tz"]).astimezone(timezone.utc).isoformat()
                except _StepError as exc:
                    problems.append({"row": n, "column": col, "message": str(exc)})
        if problems:
            errors.extend(problems)
            continue
        for k, v in clean.items():
            if isinstance(v, datetime):  # Excel cells without a datetime_columns entry
                clean[k] = parse_datetime(v, source_tz=cfg["source_tz"]).astimezone(timezone.utc).isoformat()
        oid = str(oid)
        item = {c: clean[c] for c in cfg["item_columns"] if c in clean}
        if oid not in orders:
            order = {k: v for k, v in clean.items() if k not in cfg["item_columns"]}
            order["items"], order["_rows"] = [], []
            orders[oid] = order
        orders[oid]["items"].append(item)
        orders[oid]["_rows"].append(n)
    events = []
    for oid, order in orders.items():
        created = order.get(cfg["created_column"])
        when = datetime.fromisoformat(created) if isinstance(created, str) and created[:4].isdigit() \
            else datetime.now(timezone.utc)
        channel = str(order.get(cfg["channel_column"]) or cfg["channel"])
        events.append(InboundEvent(ORDER_CREATED, oid, channel, when, order,
                                   source_id=f"{os.path.basename(filename)}#{digest}#{oid}"))
    return FileParseResult(events, errors, len(rows))


class FileDropConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def verify_webhook(self, headers, body, config, credentials):
        return None  # uploads come through the authenticated admin UI/API, not from outside

    def parse_webhook(self, headers, body, config):
        name = header(headers, "X-Filename") or "upload.csv"
        return parse_file(name, body, config).events

    def parse_file(self, filename: str, data: bytes, config: dict | None = None) -> FileParseResult:
        return parse_file(filename, data, config)

    def pull(self, config, credentials, cursor):
        cfg = apply_defaults(self.manifest.config_schema, config)
        folder = cfg["directory"]
        if not folder or not os.path.isdir(folder):
            raise ConfigError(f"config/directory {folder!r} is not a folder", path="config/directory")
        cur = {"done": {}, **(cursor or {})}
        done: dict = dict(cur["done"])
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".csv", ".xlsx")))
        pending = []
        for f in files:
            with open(os.path.join(folder, f), "rb") as fh:
                data = fh.read()
            sha = hashlib.sha256(data).hexdigest()
            if done.get(f) != sha:
                pending.append((f, sha, data))
        if not pending:
            return PullPage([], {"done": done}, False)
        fname, sha, data = pending[0]
        offset = cur.get("offset", 0) if (cur.get("file"), cur.get("sha")) == (fname, sha) else 0
        try:
            result = parse_file(fname, data, cfg)
        except PayloadError as exc:  # an unreadable file is reported once and skipped
            done[fname] = sha
            return PullPage([], {"done": done}, len(pending) > 1,
                            [{"file": fname, "row": None, "column": None, "message": str(exc)}])
        chunk = result.events[offset: offset + cfg["page_size"]]
        errors = [dict(e, file=fname) for e in result.errors] if offset == 0 else []
        new_offset = offset + len(chunk)
        if new_offset >= len(result.events):
            done[fname] = sha
            return PullPage(chunk, {"done": done}, len(pending) > 1, errors)
        return PullPage(chunk, {"done": done, "file": fname, "sha": sha, "offset": new_offset}, True, errors)
