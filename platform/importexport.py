"""Spreadsheet import and export of a table's records (CSV and XLSX). No Flask here, so the
CLI and the solution templates' sample data can use it too; ``api/io_routes.py`` only wires
HTTP to it.

Export pages through ``Records.list`` with its keyset cursor, so permissions (hidden
fields, row scopes) apply exactly as for the API and a large table is never held in memory.
Import goes through ``Records.create_many`` in chunks, so every value is validated by its
field type; errors come back per spreadsheet row and column. See docs/import-export.md.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any, Iterable, Iterator

from sqlalchemy.exc import IntegrityError

from .errors import ApiError, ValidationFailed, field_error
from .fields.base import FieldSpec
from .storage.query import Query
from .storage.records import Records
from .storage.schema import TableSchema

MAX_IMPORT_ROWS = 100_000
CHUNK_ROWS = 1_000
EXPORT_PAGE = 1_000
MAX_REPORTED_ERRORS = 5_000
XLSX_MAX_ROWS = 1_048_576
CSV_MIME = "text/csv; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: System columns that may be asked for by name in an export (never imported).
SYSTEM_LABELS = {
    "id": {"zh-CN": "记录 ID", "en": "Record ID"},
    "version": {"zh-CN": "版本", "en": "Version"},
    "created_at": {"zh-CN": "创建时间", "en": "Created at"},
    "updated_at": {"zh-CN": "修改时间", "en": "Updated at"},
    "created_by": {"zh-CN": "创建人", "en": "Created by"},
    "updated_by": {"zh-CN": "修改人", "en": "Updated by"},
}
ROW_WORD = {"zh-CN": "主表行号", "en": "Row"}
YES_NO = {"zh": ("是", "否"), "en": ("Yes", "No")}
_FORMULA_START = ("=", "+", "-", "@")
_PLAIN_NUMBER = re.compile(r"^[+-]?[\d.,\s]+%?$")
_ILLEGAL_XLSX = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
_SUMMARY_SEP = "; "


# -- labels --------------------------------------------------------------------------------

def label_text(label, locale: str, fallback: str) -> str:
    """A label in one locale: a string, or {"zh-CN": .., "en": ..} with sensible fallbacks."""
    if isinstance(label, dict):
        lang = locale.split("-")[0]
        for key in (locale, lang, *[k for k in label if k.split("-")[0] == lang], "zh-CN", "en"):
            if label.get(key):
                return str(label[key])
        return next((str(v) for v in label.values() if v), fallback)
    return str(label) if label else fallback


def label_variants(label) -> list[str]:
    if isinstance(label, dict):
        return [str(v) for v in label.values() if v]
    return [str(label)] if label else []


def _norm(name) -> str:
    return " ".join(str(name).split()).casefold()


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    out = ""
    n = index + 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def kind_of(spec: FieldSpec) -> str:
    """The type that decides how a value looks in a cell (computed fields: their result type)."""
    t = spec.type
    if t.computed and hasattr(t, "result_type"):
        return t.result_type(spec)
    return t.name


def writable(spec: FieldSpec) -> bool:
    t = spec.type
    if t.computed or t.storage == "system":
        return False
    if t.name == "attachment":
        return False  # files are uploaded first; a file name in a cell cannot become a file
    if t.name == "link" and t.relationship(spec) == "one_to_many":
        return False
    return True


# -- export --------------------------------------------------------------------------------

@dataclass
class ExportColumn:
    name: str  # api name
    header: str
    kind: str
    spec: FieldSpec | None = None
    children: list["ExportColumn"] = field(default_factory=list)  # sub-table columns
    child_schema: TableSchema | None = None
    child_label: str = ""


def export_columns(records: Records, schema: TableSchema, fields: list[str] | None = None, *, header: str = "label",
                   locale: str = "zh-CN") -> list[ExportColumn]:
    """The columns of an export: ``fields`` in that order (field api names, or system columns
    such as ``id``), else every field the actor may see, in field order."""
    if header not in ("label", "api_name"):
        raise ValidationFailed("header must be 'label' or 'api_name'", message_zh="header 应为 'label' 或 'api_name'",
                               errors=[field_error("/header", "label or api_name", "label 或 api_name")])
    access = records.access(schema)
    access.require_read(schema)
    visible = [n for n in schema.fields if n not in access.hidden]
    if fields is None:
        names = visible
    else:
        names, errors = [], []
        for i, n in enumerate(fields):
            if n not in visible and n not in SYSTEM_LABELS:
                errors.append(field_error(f"/fields/{i}", f"unknown field '{n}'; fields: {', '.join(visible)}",
                                          f"没有字段 '{n}';现有字段: {', '.join(visible)}", code="unknown_field"))
            elif n not in names:
                names.append(n)
        if errors:
            raise ValidationFailed(errors[0]["message"], message_zh=errors[0]["message_zh"], errors=errors)
    cols = []
    for n in names:
        if n in SYSTEM_LABELS:
            spec = schema.system_specs.get(n)
            kind = {"created_at": "datetime", "updated_at": "datetime"}.get(n, "number" if n in ("id", "version") else "user")
            cols.append(ExportColumn(n, n if header == "api_name" else label_text(SYSTEM_LABELS[n], locale, n), kind, spec))
            continue
        spec = schema.fields[n]
        col = ExportColumn(n, n if header == "api_name" else label_text(spec.label, locale, n), kind_of(spec), spec)
        if spec.type.name == "sub_table":
            child = records.schema(spec.options["table"])
            chidden = records.access(child).hidden
            col.child_schema = child
            col.child_label = label_text(spec.options.get("label") or spec.label, locale, n)
            col.children = [ExportColumn(c.api_name, c.api_name if header == "api_name" else label_text(c.label, locale, c.api_name),
                                         kind_of(c), c) for c in child.fields.values() if c.api_name not in chidden]
        cols.append(col)
    return cols


def iter_records(records: Records, schema: TableSchema, query: Query, columns: list[ExportColumn],
                 page_size: int | None = None) -> Iterator[dict]:
    """Every record matching ``query``, one page at a time (keyset cursor, never OFFSET)."""
    page_size = page_size or EXPORT_PAGE
    wanted = [c.name for c in columns if c.spec is not None and c.name in schema.fields]
    q = replace(query, limit=page_size, cursor=None, offset=None, fields=wanted)
    with_children = any(c.children is not None and c.child_schema is not None for c in columns)
    while True:
        page = records.list(schema, q, with_children=with_children)
        yield from page["records"]
        if not page["has_more"]:
            return
        q.cursor = page["next_cursor"]


def _decimal_text(v) -> str:
    d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


def _select_label(value: str, spec: FieldSpec | None, locale: str) -> str:
    if spec is not None and locale.startswith("en"):
        for c in spec.options.get("choices", []):
            if c.get("label") == value and c.get("label_en"):
                return c["label_en"]
    return value


def _decimals(spec) -> int:
    """Decimal places of a currency column; a formula or rollup with result_type currency
    keeps them in its options."""
    if spec is None:
        return 2
    if hasattr(spec.type, "decimals"):
        return spec.type.decimals(spec)
    return int(spec.options.get("decimals", 2))


def cell_value(col: ExportColumn, value: Any, target: str, locale: str = "zh-CN"):
    """A record value as a spreadsheet user expects it. ``target`` is "csv" (text) or
    "xlsx" (numbers, dates and booleans stay typed)."""
    if value is None or value == [] or value == "":
        return None
    kind, spec, xlsx = col.kind, col.spec, target == "xlsx"
    if kind == "single_select":
        return _select_label(value, spec, locale)
    if kind == "multi_select":
        return ", ".join(_select_label(v, spec, locale) for v in value)
    if kind == "boolean":
        if xlsx:
            return bool(value)
        yes, no = YES_NO["en" if locale.startswith("en") else "zh"]
        return yes if value else no
    if kind == "currency":
        places = _decimals(spec)
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        d = d.quantize(Decimal(1).scaleb(-places))
        return d if xlsx else format(d, "f")
    if kind == "percent":
        if xlsx:
            return value
        return _decimal_text(Decimal(repr(value)) * 100 if isinstance(value, float) else Decimal(value) * 100) + "%"
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return str(value)
        return value if xlsx else _decimal_text(value)
    if kind == "date":
        return date.fromisoformat(value[:10]) if xlsx else value[:10]
    if kind in ("datetime", "created_time", "modified_time"):
        dt = datetime.fromisoformat(value)
        local = dt.replace(tzinfo=None)  # already in the tenant timezone
        return local if xlsx else local.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "address":
        if isinstance(value, dict):
            return value.get("text") or ", ".join(str(value[k]) for k in ("country", "postcode") if value.get(k)) or None
        return str(value)
    if kind == "attachment":
        return ", ".join(str(a.get("filename") or a.get("token")) if isinstance(a, dict) else str(a) for a in value)
    if kind == "sub_table":
        return sub_table_summary(col, value, locale)
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def sub_table_summary(col: ExportColumn, rows: list[dict], locale: str) -> str | None:
    """One line per child row: ``name: value; name: value`` (empty values left out)."""
    lines = []
    for row in rows:
        parts = []
        for c in col.children:
            v = cell_value(c, row.get(c.name), "csv", locale)
            if v is not None and v != "":
                parts.append(f"{c.header}: {v}")
        lines.append(_SUMMARY_SEP.join(parts))
    return "\n".join(lines) or None


def _csv_safe(v) -> str:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe (stripped
    again on import); plain numbers such as -5 or +86 138... stay as they are."""
    if v is None:
        return ""
    s = str(v)
    if s.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(s):
        return "'" + s
    return s


def csv_chunks(columns: list[ExportColumn], records_iter: Iterable[dict], *, locale: str = "zh-CN",
               flush_rows: int = 200) -> Iterator[bytes]:
    """The CSV file in pieces: UTF-8 with BOM (so Excel reads Chinese), CRLF line ends."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([_csv_safe(c.header) for c in columns])
    yield codecs.BOM_UTF8 + buf.getvalue().encode("utf-8")
    buf.seek(0)
    buf.truncate()
    n = 0
    for rec in records_iter:
        w.writerow([_csv_safe(cell_value(c, rec.get(c.name), "csv", locale)) for c in columns])
        n += 1
        if n % flush_rows == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def _sheet_title(name: str, taken: set) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", name).strip("'")[:31] or "Sheet"
    title, i = base, 2
    while title.casefold() in taken:
        suffix = f" ({i})"
        title, i = base[:31 - len(suffix)] + suffix, i + 1
    taken.add(title.casefold())
    return title


_NUMBER_FORMATS = {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss", "created_time": "yyyy-mm-dd hh:mm:ss",
                   "modified_time": "yyyy-mm-dd hh:mm:ss", "percent": "0.00%"}


def _xlsx_cell(ws, col: ExportColumn, value):
    from openpyxl.cell import WriteOnlyCell

    if isinstance(value, str):
        cell = WriteOnlyCell(ws, _ILLEGAL_XLSX.sub("", value))
        cell.data_type = "s"  # text starting with "=" is text, never a formula
        return cell
    if value is None or isinstance(value, bool):
        return value
    fmt = _NUMBER_FORMATS.get(col.kind)
    if col.kind == "currency" and col.spec is not None:
        places = _decimals(col.spec)
        fmt = "#,##0" + ("." + "0" * places if places else "")
    if fmt is None:
        return value
    cell = WriteOnlyCell(ws, value)
    cell.number_format = fmt
    return cell


def write_xlsx(out: IO[bytes], columns: list[ExportColumn], records_iter: Iterable[dict], *, sheet_name: str,
               locale: str = "zh-CN") -> int:
    """Writes the workbook (openpyxl write-only mode: rows go to temporary files, not memory).
    The first sheet has one row per record; sub-table columns there hold the compact text
    summary, and each sub-table also gets a sheet of its own with one row per child row and
    the record's row number on the first sheet. Returns the number of records written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    taken: set = set()
    ws = wb.create_sheet(_sheet_title(sheet_name, taken))
    bold = Font(bold=True)

    def header_row(sheet, names):
        cells = []
        for n in names:
            c = WriteOnlyCell(sheet, _ILLEGAL_XLSX.sub("", n))
            c.data_type = "s"
            c.font = bold
            cells.append(c)
        return cells

    ws.append(header_row(ws, [c.header for c in columns]))
    ws.freeze_panes = "A2"
    detail = {}
    for c in columns:
        if c.kind == "sub_table" and c.children:
            cws = wb.create_sheet(_sheet_title(c.child_label or c.header, taken))
            cws.append(header_row(cws, [label_text(ROW_WORD, locale, "Row")] + [cc.header for cc in c.children]))
            detail[c.name] = [cws, 1]
    n = 0
    for rec in records_iter:
        if n + 2 > XLSX_MAX_ROWS:
            break
        row_no = n + 2
        ws.append([_xlsx_cell(ws, c, cell_value(c, rec.get(c.name), "xlsx", locale)) for c in columns])
        for c in columns:
            if c.name in detail:
                cws, count = detail[c.name]
                for child in rec.get(c.name) or []:
                    if count + 1 > XLSX_MAX_ROWS:
                        break
                    cws.append([row_no] + [_xlsx_cell(cws, cc, cell_value(cc, child.get(cc.name), "xlsx", locale)) for cc in c.children])
                    count += 1
                detail[c.name][1] = count
        n += 1
    wb.save(out)
    return n


# -- reading spreadsheets ------------------------------------------------------------------

@dataclass
class SheetData:
    format: str  # csv / xlsx
    encoding: str | None
    header: list[str]
    rows: Iterator[tuple[int, list]]  # (spreadsheet row number, cell values); header is row 1


def _bad_file(message: str, message_zh: str, code: str = "bad_file", status: int = 400):
    return ApiError(message, message_zh=message_zh, code=code, status=status)


_BINARY_MAGIC = {b"%PDF": "PDF", b"\x89PNG": "PNG image", b"\xff\xd8\xff": "JPEG image", b"GIF8": "GIF image",
                 b"\x1f\x8b": "gzip archive", b"Rar!": "RAR archive", b"7z\xbc\xaf": "7z archive"}


def read_spreadsheet(data: bytes, filename: str = "", *, max_bytes: int | None = None) -> SheetData:
    """Opens a CSV (UTF-8 with or without BOM, else GB18030; comma, tab or semicolon) or XLSX
    file (its first sheet). Raises ApiError with a plain-words message for anything else."""
    if max_bytes is not None and len(data) > max_bytes:
        raise _bad_file(f"the file is larger than {_size(max_bytes)}", f"文件超过 {_size(max_bytes)}", "too_large", 413)
    if not data or not data.strip(b"\xef\xbb\xbf \t\r\n,;"):
        raise _bad_file("the file is empty", "文件是空的", "empty_file")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise _bad_file("this is an old Excel .xls file; save it as .xlsx or .csv and upload again",
                        "这是旧版 Excel .xls 文件,请另存为 .xlsx 或 .csv 后重新上传", "unsupported_format", 415)
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    if ext in ("xlsx", "xlsm"):
        raise _bad_file("the file is not a valid .xlsx workbook", "文件不是有效的 .xlsx 工作簿", "not_a_spreadsheet", 415)
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise _bad_file(f"the file is a {what}, not a spreadsheet; upload a .csv or .xlsx file",
                            f"文件是 {what},不是表格;请上传 .csv 或 .xlsx 文件", "not_a_spreadsheet", 415)
    if b"\x00" in data[:8192]:
        raise _bad_file("the file is not a spreadsheet (binary data); upload a .csv or .xlsx file",
                        "文件不是表格(二进制内容);请上传 .csv 或 .xlsx 文件", "not_a_spreadsheet", 415)
    return _read_csv(data)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n} bytes"


def _read_csv(data: bytes) -> SheetData:
    if data.startswith(codecs.BOM_UTF8):
        text, enc = data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict"), "utf-8-sig"
    else:
        try:
            text, enc = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            try:
                text, enc = data.decode("gb18030"), "gb18030"
            except UnicodeDecodeError:
                raise _bad_file("the file's text encoding is not UTF-8 or GB18030; save it as \"CSV UTF-8\" and upload again",
                                "文件编码不是 UTF-8 或 GB18030,请另存为“CSV UTF-8”后重新上传", "bad_encoding") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=lambda d: first.count(d)) if any(d in first for d in ",\t;") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise _bad_file("the file is empty", "文件是空的", "empty_file") from None
    except csv.Error as e:
        raise _bad_file(f"row 1 cannot be read as CSV: {e}", f"第 1 行无法按 CSV 读取: {e}", "bad_csv") from None

    def rows():
        n = 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise _bad_file(f"row {n + 1} cannot be read as CSV: {e}", f"第 {n + 1} 行无法按 CSV 读取: {e}", "bad_csv") from None
            n = reader.line_num if reader.line_num > n else n + 1
            yield n, [_uncsv(v) for v in values]

    return SheetData("csv", enc, [h.strip() for h in header], rows())


def _uncsv(v: str):
    if v.startswith("'") and v[1:2] in _FORMULA_START:
        return v[1:]
    return v


def _read_xlsx(data: bytes) -> SheetData:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        first = next(it, None)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, IndexError) as e:
        raise _bad_file(f"the file is not a valid .xlsx workbook ({type(e).__name__})", "文件不是有效的 .xlsx 工作簿",
                        "not_a_spreadsheet", 415) from None
    if first is None:
        wb.close()
        raise _bad_file("the file is empty", "文件是空的", "empty_file")
    header = ["" if v is None else str(v).strip() for v in first]

    def rows():
        try:
            for n, values in enumerate(it, start=2):
                yield n, list(values)
        finally:
            wb.close()

    return SheetData("xlsx", None, header, rows())


# -- import --------------------------------------------------------------------------------

@dataclass
class ImportColumn:
    index: int
    header: str
    spec: FieldSpec


def _field_names(spec: FieldSpec) -> set[str]:
    return {_norm(spec.api_name), *(_norm(v) for v in label_variants(spec.label))}


def plan_columns(records: Records, schema: TableSchema, header: list[str], mapping: dict | None = None):
    """Decides which column fills which field. Returns (columns, unmapped) where unmapped
    lists every column left out and why. Raises ValidationFailed for a missing header, a
    duplicate header or a bad mapping (unknown column or field, computed field, two columns
    for one field)."""
    access = records.access(schema)
    width = len(header)
    while width and not header[width - 1]:
        width -= 1
    header = header[:width]
    if not any(header):
        raise ValidationFailed("the header row is missing: row 1 must hold the column names",
                               message_zh="缺少表头:第 1 行应为列名", code="missing_header",
                               errors=[field_error("/file", "row 1 must hold the column names", "第 1 行应为列名")])
    seen: dict[str, int] = {}
    dups = []
    for i, h in enumerate(header):
        if not h:
            continue
        k = _norm(h)
        if k in seen:
            dups.append(f"{h} ({column_letter(seen[k])}, {column_letter(i)})")
        else:
            seen[k] = i
    if dups:
        raise ValidationFailed(f"duplicate column names: {', '.join(dups)}; rename them so each column is unique",
                               message_zh=f"列名重复: {', '.join(dups)};请改名使每列唯一", code="duplicate_header",
                               errors=[field_error("/file", f"duplicate column {d}", f"重复的列 {d}") for d in dups])
    visible = {n: s for n, s in schema.fields.items() if n not in access.hidden}
    by_header = {_norm(h): i for i, h in enumerate(header) if h}
    chosen: dict[int, FieldSpec] = {}
    ignored: dict[int, tuple[str, str]] = {}
    errors = []
    if mapping is not None:
        if not isinstance(mapping, dict):
            raise ValidationFailed("mapping must be a JSON object {\"column\": \"field\"}",
                                   message_zh="mapping 应为 JSON 对象 {\"列名\": \"字段\"}", code="bad_mapping",
                                   errors=[field_error("/mapping", "an object", "应为对象")])
        for col_name, target in mapping.items():
            ptr = f"/mapping/{col_name}"
            i = by_header.get(_norm(col_name))
            if i is None:
                errors.append(field_error(ptr, f"the file has no column '{col_name}'; columns: {', '.join(h for h in header if h)}",
                                          f"文件中没有列 '{col_name}';现有列: {', '.join(h for h in header if h)}", code="unknown_column"))
                continue
            if target is None or target == "":
                ignored[i] = ("left out by the mapping", "按映射不导入")
                continue
            spec = visible.get(target) if isinstance(target, str) else None
            if spec is None:
                errors.append(field_error(ptr, f"unknown field '{target}'; fields: {', '.join(visible)}",
                                          f"没有字段 '{target}';现有字段: {', '.join(visible)}", code="unknown_field"))
            elif not writable(spec):
                errors.append(field_error(ptr, f"'{target}' is computed or filled by the system and cannot be imported",
                                          f"'{target}' 是自动计算或系统填写的字段,不能导入", code="read_only"))
            elif target in access.read_only:
                errors.append(field_error(ptr, f"you may not change '{target}'", f"你没有修改 '{target}' 的权限", code="read_only"))
            else:
                chosen[i] = spec
    explicit = set(chosen)
    for i, h in enumerate(header):
        if i in chosen or i in ignored or not h:
            continue
        k = _norm(h)
        matches = [s for s in visible.values() if _norm(s.api_name) == k] or \
                  [s for s in visible.values() if k in _field_names(s)]
        if not matches:
            ignored[i] = ("no field has this name or label", "没有同名的字段")
        elif len(matches) > 1:
            ignored[i] = (f"ambiguous: matches {', '.join(s.api_name for s in matches)}; use a mapping",
                          f"有歧义:匹配 {', '.join(s.api_name for s in matches)};请指定映射")
        elif not writable(matches[0]):
            ignored[i] = (f"'{matches[0].api_name}' is computed or filled by the system", f"'{matches[0].api_name}' 是自动计算或系统填写的字段")
        elif matches[0].api_name in access.read_only:
            ignored[i] = (f"you may not change '{matches[0].api_name}'", f"你没有修改 '{matches[0].api_name}' 的权限")
        else:
            chosen[i] = matches[0]
    targets: dict[str, list[int]] = {}
    for i, spec in chosen.items():
        targets.setdefault(spec.api_name, []).append(i)
    for name, idx in targets.items():
        if len(idx) > 1:
            cols = ", ".join(f"{header[i]} ({column_letter(i)})" for i in sorted(idx))
            named = [i for i in sorted(idx) if i in explicit] or sorted(idx)[1:]
            errors.append(field_error(f"/mapping/{header[named[0]]}", f"columns {cols} all go to field '{name}'; keep one",
                                      f"列 {cols} 都对应字段 '{name}',只能保留一列", code="duplicate_target"))
    if errors:
        raise ValidationFailed(f"the column mapping has problems: {errors[0]['message']}",
                               message_zh=f"列映射有误: {errors[0]['message_zh']}", code="bad_mapping", errors=errors)
    columns = [ImportColumn(i, header[i], chosen[i]) for i in sorted(chosen)]
    unmapped = [{"column": header[i] or f"({column_letter(i)})", "letter": column_letter(i), "reason": r[0], "reason_zh": r[1]}
                for i, r in sorted(ignored.items())]
    return columns, unmapped


def _cell_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def import_value(spec: FieldSpec, v, records: Records):
    """A cell as the value the field type takes (the type itself validates it)."""
    t = spec.type
    name = t.name
    if name in ("number", "currency", "percent", "boolean", "date", "datetime"):
        return v
    if name == "link":
        if t.relationship(spec) == "many_to_many":
            if isinstance(v, str):
                return [p for p in re.split(r"[,，;；\s]+", v) if p]
            return [_cell_text(v)]
        return _cell_text(v) if isinstance(v, float) else v
    if name == "json":
        if isinstance(v, str):
            try:
                return json.loads(v)
            except ValueError:
                return v
        return v
    if name == "sub_table":
        return parse_summary(records, spec, _cell_text(v))
    return _cell_text(v)


class _RowError(ValueError):
    def __init__(self, message, message_zh):
        super().__init__(message)
        self.message, self.message_zh = message, message_zh


def parse_summary(records: Records, spec: FieldSpec, text: str) -> list[dict]:
    """The sub-table text an export writes (one line per row, ``name: value; name: value``)
    back into rows; a JSON list of objects is accepted too."""
    text = text.strip()
    if text.startswith("["):
        try:
            rows = json.loads(text)
        except ValueError:
            raise _RowError("the sub-table cell is not valid JSON", "子表单元格不是有效的 JSON") from None
        return rows
    child = records.schema(spec.options["table"])
    names = {}
    for c in child.fields.values():
        for n in _field_names(c):
            names.setdefault(n, c)
    rows = []
    for ln, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = {}
        for part in line.split(";"):
            part = part.strip()
            if not part:
                continue
            m = re.match(r"^([^:：]+)[:：]\s*(.*)$", part)
            if not m:
                raise _RowError(f"line {ln} of the sub-table: '{part}' is not 'name: value'",
                                f"子表第 {ln} 行: '{part}' 不是“名称: 值”")
            c = names.get(_norm(m.group(1)))
            if c is None:
                raise _RowError(f"line {ln} of the sub-table: no column '{m.group(1).strip()}'",
                                f"子表第 {ln} 行: 没有列 '{m.group(1).strip()}'")
            if writable(c) and m.group(2) != "":
                row[c.api_name] = import_value(c, m.group(2), records)
        rows.append(row)
    return rows


@dataclass
class ImportOptions:
    mapping: dict | None = None
    skip_invalid: bool = False
    dry_run: bool = False
    max_rows: int = MAX_IMPORT_ROWS
    chunk_rows: int | None = None  # default CHUNK_ROWS


def import_records(records: Records, schema: TableSchema, sheet: SheetData, options: ImportOptions | None = None) -> dict:
    """Imports the rows of ``sheet`` into ``schema`` inside a savepoint of the records'
    session, in chunks. Returns the report (see docs/import-export.md); ``report["ok"]`` is
    false when an all-or-nothing import found bad rows, and then nothing was saved. A dry
    run validates the same way and always rolls back."""
    opts = options or ImportOptions()
    chunk_rows = opts.chunk_rows or CHUNK_ROWS
    access = records.access(schema)
    access.require_write(schema)
    columns, unmapped = plan_columns(records, schema, sheet.header, opts.mapping)
    if not columns:
        raise ValidationFailed("no column of the file matches a field of the table; give a mapping",
                               message_zh="文件中没有与表字段对应的列,请指定映射", code="nothing_to_import",
                               errors=[field_error("/mapping", u["column"] + ": " + u["reason"], u["column"] + ": " + u["reason_zh"])
                                       for u in unmapped] or [field_error("/file", "no columns", "没有列")])
    by_field = {c.spec.api_name: c for c in columns}
    report = {
        "ok": True, "dry_run": opts.dry_run, "skip_invalid": opts.skip_invalid, "format": sheet.format,
        "encoding": sheet.encoding, "rows": 0, "valid": 0, "invalid": 0, "created": 0, "skipped": 0,
        "columns": [{"column": c.header, "letter": column_letter(c.index), "field": c.spec.api_name} for c in columns],
        "unmapped_columns": unmapped, "errors": [], "error_count": 0, "errors_truncated": False,
    }
    bad_rows: set[int] = set()

    def add_error(row_no, col: ImportColumn | None, message, message_zh, code="invalid_value"):
        bad_rows.add(row_no)
        report["error_count"] += 1
        if len(report["errors"]) >= MAX_REPORTED_ERRORS:
            report["errors_truncated"] = True
            return
        report["errors"].append({"row": row_no, "column": col.header if col else None,
                                 "letter": column_letter(col.index) if col else None,
                                 "field": col.spec.api_name if col else None,
                                 "message": message, "message_zh": message_zh, "code": code})

    def add_core_errors(errs, row_nos):
        for e in errs:
            parts = e.get("pointer", "").strip("/").split("/")
            try:
                row_no = row_nos[int(parts[1])]
            except (IndexError, ValueError):
                row_no = row_nos[0] if len(row_nos) == 1 else None
            col = by_field.get(parts[2]) if len(parts) > 2 else None
            msg, msg_zh = e["message"], e.get("message_zh", e["message"])
            if len(parts) > 4 and col is not None:  # a sub-table row: /rows/<i>/<field>/<n>/<child field>
                msg = f"{col.header} line {int(parts[3]) + 1}: {msg}" if parts[3].isdigit() else msg
                msg_zh = f"{col.header} 第 {int(parts[3]) + 1} 行: {msg_zh}" if parts[3].isdigit() else msg_zh
            if row_no is None:
                for r in row_nos:
                    add_error(r, col, msg, msg_zh, e.get("code", "invalid_value"))
            else:
                add_error(row_no, col, msg, msg_zh, e.get("code", "invalid_value"))

    conn = records.session
    outer = conn.begin_nested()
    try:
        chunk: list[tuple[int, dict]] = []
        for row_no, values in sheet.rows:
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue  # blank lines are not records
            report["rows"] += 1
            if report["rows"] > opts.max_rows:
                raise ApiError(f"at most {opts.max_rows:,} rows per import; split the file",
                               message_zh=f"每次最多导入 {opts.max_rows:,} 行,请拆分文件", code="too_many_rows", status=413)
            rec = {}
            for c in columns:
                v = values[c.index] if c.index < len(values) else None
                if isinstance(v, str):
                    v = v.strip()
                if v is None or v == "":
                    continue
                try:
                    rec[c.spec.api_name] = import_value(c.spec, v, records)
                except _RowError as e:
                    add_error(row_no, c, e.message, e.message_zh)
            if row_no in bad_rows:
                continue
            chunk.append((row_no, rec))
            if len(chunk) >= chunk_rows:
                report["created"] += _save_chunk(records, schema, chunk, add_core_errors, add_error)
                chunk = []
        if chunk:
            report["created"] += _save_chunk(records, schema, chunk, add_core_errors, add_error)
        if report["rows"] == 0:
            raise ValidationFailed("the file has a header row but no data rows", message_zh="文件只有表头,没有数据行",
                                   code="no_rows", errors=[field_error("/file", "no data rows", "没有数据行")])
    except BaseException:
        outer.rollback()
        raise
    report["invalid"] = len(bad_rows)
    report["valid"] = report["rows"] - report["invalid"]
    # skip_invalid saves the good rows and reports the others, but a file with no good row fails.
    report["ok"] = not bad_rows or (opts.skip_invalid and report["valid"] > 0)
    if opts.dry_run or not report["ok"]:
        outer.rollback()
        if opts.dry_run:
            report["would_create"] = report["created"] if report["ok"] else 0
        report["created"] = 0
    else:
        outer.commit()
    report["skipped"] = report["invalid"] if opts.skip_invalid else 0
    report["errors"].sort(key=lambda e: (e["row"], e["letter"] or ""))
    return report


def _save_chunk(records: Records, schema: TableSchema, chunk, add_core_errors, add_error) -> int:
    """Saves a chunk of rows; a chunk that fails as a whole (a bad sub-table row, a taken
    unique value) is retried one row at a time so that the error lands on its row."""
    session = records.session
    row_nos = [r for r, _ in chunk]
    sp = session.begin_nested()
    try:
        res = records.create_many(schema, [v for _, v in chunk], skip_invalid=True, pointer="/rows", return_records=False)
        sp.commit()
        add_core_errors(res["errors"], row_nos)
        return len(res["created"])
    except (ValidationFailed, IntegrityError):
        sp.rollback()
    created = 0
    for row_no, values in chunk:
        sp = session.begin_nested()
        try:
            res = records.create_many(schema, [values], skip_invalid=True, pointer="/rows", return_records=False)
            sp.commit()
            add_core_errors(res["errors"], [row_no])
            created += len(res["created"])
        except ValidationFailed as e:
            sp.rollback()
            add_core_errors(e.errors or [field_error("/rows/0", e.message, e.message_zh)], [row_no])
        except IntegrityError:
            sp.rollback()
            add_error(row_no, None, "a unique value of this row is already taken", "此行的唯一值已被占用", "conflict")
    return created
