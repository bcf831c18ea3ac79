"""Field mappings: turn an event payload into record values for a table and its sub-tables.

A mapping is JSON an admin can edit (validated by :data:`MAPPING_SCHEMA`)::

    {
      "table": "orders",
      "event_types": ["order.created", "order.paid"],
      "fields": {
        "external_order_id": "$.id",
        "channel":      {"const": "Shopify"},
        "amount_due":   {"path": "$.total_price", "transform": "to_number"},
        "created":      {"path": "$.created_at", "transform": {"op": "to_datetime"}},
        "status":       {"path": "$.financial_status",
                         "transform": {"op": "lookup", "map": {"paid": "已付款"}, "default": "待付款"}},
        "remarks":      {"template": "{{ payload.note or '' }} ({{ payload.name }})"}
      },
      "subtables": {
        "items": {"path": "$.line_items[*]",
                  "fields": {"sku": "@.sku", "qty": {"path": "@.quantity", "transform": "to_integer"}}}
      }
    }

Paths are a small JSONPath subset: ``$`` is the payload, ``@`` the current sub-table item
(``$`` at top level), then ``.name``, ``['name']``, ``[0]``, ``[-1]``, ``[*]``/``.*``.
A list of paths means "first non-empty". No dependency on jsonpath-ng: this subset is
all the mappings need and its errors can name the mapping path precisely.

Transforms (a name, an object with ``op``, or a list applied in order): ``to_number``
(``scale``, ``round``), ``to_integer``, ``to_string``, ``to_bool``, ``to_datetime``
(``source_tz`` for naive values, ``format``, ``unit`` s/ms for epochs; output ISO 8601 in the
tenant time zone), ``to_date``, ``lookup`` (``map``, ``default``), ``select`` (value must be
one of the target field's options, passed by the platform), ``template``, ``strip``,
``upper``, ``lower``, ``split``, ``join``, ``first``, ``sum``, ``default``.

Every problem is reported as a :class:`MappingIssue` whose ``mapping_path`` names the spot
in the mapping JSON (``fields.amount_due.transform[0]``) and ``payload_path`` the data.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .errors import PermanentError
from .templating import TemplateRenderError, check_syntax, render

MISSING = object()

_PATH_RE = re.compile(r"""
    \.(?P<name>[^.\[\]]+)
  | \[\s*(?P<index>-?\d+)\s*\]
  | \[\s*(?P<star>\*)\s*\]
  | \[\s*'(?P<sq>[^']*)'\s*\]
  | \[\s*"(?P<dq>[^"]*)"\s*\]
""", re.X)

TRANSFORM_OPS = {"to_number", "to_integer", "to_string", "to_bool", "to_datetime", "to_date",
                 "lookup", "select", "template", "strip", "upper", "lower", "split", "join",
                 "first", "sum", "default"}

_PATH_STR = {"type": "string", "pattern": r"^[$@]"}
_TRANSFORM_STEP = {
    "oneOf": [
        {"type": "string", "enum": sorted(TRANSFORM_OPS)},
        {"type": "object", "required": ["op"],
         "properties": {
             "op": {"enum": sorted(TRANSFORM_OPS)},
             "scale": {"type": "number"}, "round": {"type": "integer", "minimum": 0},
             "source_tz": {"type": "string"}, "format": {"type": "string"},
             "unit": {"enum": ["s", "ms"]}, "map": {"type": "object"},
             "case_insensitive": {"type": "boolean"}, "template": {"type": "string"},
             "sep": {"type": "string"}, "default": {}, "field": {"type": "string"}},
         "additionalProperties": False},
    ]
}
_FIELD = {
    "oneOf": [
        _PATH_STR,
        {"type": "object",
         "properties": {
             "path": {"oneOf": [_PATH_STR, {"type": "array", "items": _PATH_STR, "minItems": 1}]},
             "const": {},
             "template": {"type": "string"},
             "transform": {"oneOf": [_TRANSFORM_STEP, {"type": "array", "items": _TRANSFORM_STEP}]},
             "default": {},
             "required": {"type": "boolean"},
         },
         "oneOf": [{"required": ["path"]}, {"required": ["const"]}, {"required": ["template"]}],
         "additionalProperties": False},
    ]
}
MAPPING_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://zhongshu.dev/schemas/connector-mapping.json",
    "title": "Zhongshu field mapping",
    "type": "object",
    "required": ["table", "fields"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "table": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "event_types": {"type": "array", "items": {"type": "string"}},
        "root": _PATH_STR,
        "key": {"type": "array", "items": {"type": "string"},
                "description": "Fields that identify the record for upserts"},
        "fields": {"type": "object", "additionalProperties": _FIELD},
        "subtables": {
            "type": "object",
            "additionalProperties": {
                "type": "object", "required": ["path", "fields"], "additionalProperties": False,
                "properties": {"path": _PATH_STR,
                               "fields": {"type": "object", "additionalProperties": _FIELD}},
            },
        },
    },
}
_validator = Draft202012Validator(MAPPING_SCHEMA)


@dataclass(frozen=True)
class MappingIssue:
    mapping_path: str
    message: str
    payload_path: str | None = None

    def __str__(self) -> str:
        at = f" (at {self.payload_path})" if self.payload_path else ""
        return f"{self.mapping_path}: {self.message}{at}"


class MappingError(PermanentError):
    code = "mapping_error"

    def __init__(self, issues: list[MappingIssue]):
        self.issues = list(issues)
        super().__init__("; ".join(str(i) for i in self.issues),
                         details={"issues": [i.__dict__ for i in self.issues]})


@dataclass
class MappedRecord:
    table: str
    values: dict
    subtables: dict[str, list[dict]] = field(default_factory=dict)
    issues: list[MappingIssue] = field(default_factory=list)


# ------------------------------------------------------------------------------- paths
def parse_path(path: str) -> tuple[str, list]:
    """``"$.a[0].b"`` → ``("$", ["a", 0, "b"])``; ``"*"`` stands for a wildcard."""
    if not isinstance(path, str) or not path or path[0] not in "$@":
        raise ValueError(f"path must start with $ or @: {path!r}")
    root, rest, pos, steps = path[0], path[1:], 0, []
    while pos < len(rest):
        m = _PATH_RE.match(rest, pos)
        if not m:
            raise ValueError(f"bad path syntax at {path[: pos + 1]!r}…")
        if m.group("name") is not None:
            steps.append("*" if m.group("name") == "*" else m.group("name"))
        elif m.group("index") is not None:
            steps.append(int(m.group("index")))
        elif m.group("star"):
            steps.append("*")
        else:
            steps.append(m.group("sq") if m.group("sq") is not None else m.group("dq"))
        pos = m.end()
    return root, steps


def find(path: str, data: Any, *, item: Any = MISSING) -> list[tuple[str, Any]]:
    """All (concrete path, value) matches of ``path`` in ``data``; ``@`` uses ``item``."""
    root, steps = parse_path(path)
    start = data if (root == "$" or item is MISSING) else item
    current = [(root, start)]
    for step in steps:
        nxt = []
        for p, v in current:
            if step == "*":
                if isinstance(v, list):
                    nxt.extend((f"{p}[{i}]", x) for i, x in enumerate(v))
                elif isinstance(v, dict):
                    nxt.extend((f"{p}.{k}", x) for k, x in v.items())
            elif isinstance(step, int):
                if isinstance(v, list) and -len(v) <= step < len(v):
                    nxt.append((f"{p}[{step}]", v[step]))
            elif isinstance(v, dict) and step in v:
                nxt.append((f"{p}.{step}", v[step]))
        current = nxt
    return current


def get(path: str, data: Any, default: Any = None, *, item: Any = MISSING) -> Any:
    """Single value at ``path`` (a list if the path has a wildcard), or ``default``."""
    _, steps = parse_path(path)
    matches = find(path, data, item=item)
    if "*" in steps:
        return [v for _, v in matches]
    return matches[0][1] if matches else default


# -------------------------------------------------------------------------- transforms
class _StepError(Exception):
    pass


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == []


def _tz(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _StepError(f"unknown time zone {name!r}") from None


def parse_datetime(value: Any, *, source_tz: str = "UTC", fmt: str | None = None,
                   unit: str | None = None) -> datetime:
    """Parse ISO 8601 / ``YYYY-MM-DD HH:MM:SS`` / epoch seconds or ms into an aware datetime.
    Naive values are interpreted in ``source_tz``."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) or (
            isinstance(value, str) and unit and re.fullmatch(r"\d+(\.\d+)?", value.strip())):
        n = float(value)
        if unit == "ms" or (unit is None and n > 1e11):
            n /= 1000.0
        return datetime.fromtimestamp(n, tz=timezone.utc)
    elif isinstance(value, str):
        s = value.strip()
        try:
            if fmt:
                dt = datetime.strptime(s, fmt)
            else:
                s2 = s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s
                s2 = s2.replace("/", "-")
                dt = datetime.fromisoformat(s2)
        except ValueError:
            raise _StepError(f"cannot parse {value!r} as a date/time"
                             + (f" with format {fmt!r}" if fmt else "")) from None
    else:
        raise _StepError(f"cannot parse {type(value).__name__} {value!r} as a date/time")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_tz(source_tz))
    return dt


def _to_decimal(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise _StepError(f"expected a number, got boolean {v!r}")
    if isinstance(v, (int, Decimal)):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, str):
        s = v.strip().replace(",", "").replace("¥", "").replace("￥", "").replace("$", "")
        try:
            d = Decimal(s)
            if d.is_finite():
                return d
        except InvalidOperation:
            pass
    raise _StepError(f"expected a number, got {v!r}")


def _num_out(d: Decimal) -> int | float:
    return int(d) if d == d.to_integral_value() else float(d)


_TRUE = {"true", "1", "yes", "y", "是", "对", "on", "t"}
_FALSE = {"false", "0", "no", "n", "否", "不", "off", "f", ""}


def _apply_step(step: dict, value: Any, ctx: dict) -> Any:
    op = step["op"]
    if op == "default":
        return step.get("default") if _empty(value) else value
    if op == "template":
        return render(step.get("template", "{{ value }}"), {**ctx["vars"], "value": value},
                      what="template", strict=False)
    if _empty(value) and op not in ("to_bool", "lookup", "sum", "join"):
        return value  # empty stays empty; "required"/"default" decide about it
    if op == "to_number":
        d = _to_decimal(value)
        if "scale" in step:
            d = d * _to_decimal(step["scale"])
        if "round" in step:
            d = d.quantize(Decimal(1).scaleb(-step["round"]), rounding=ROUND_HALF_UP)
        return _num_out(d)
    if op == "to_integer":
        d = _to_decimal(value)
        if d != d.to_integral_value():
            raise _StepError(f"expected a whole number, got {value!r}")
        return int(d)
    if op == "to_string":
        return value if isinstance(value, str) else (
            str(_num_out(_to_decimal(value))) if isinstance(value, (int, float)) and not isinstance(value, bool)
            else str(value))
    if op == "to_bool":
        if isinstance(value, bool):
            return value
        if value is None:
            return False
        s = str(value).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise _StepError(f"expected a yes/no value, got {value!r}")
    if op in ("to_datetime", "to_date"):
        dt = parse_datetime(value, source_tz=step.get("source_tz", "UTC"), fmt=step.get("format"),
                            unit=step.get("unit"))
        local = dt.astimezone(ctx["tz"])
        return local.date().isoformat() if op == "to_date" else local.isoformat()
    if op == "lookup":
        table = step.get("map") or {}
        key = value if not isinstance(value, (int, float)) or isinstance(value, bool) else str(_num_out(_to_decimal(value)))
        if isinstance(key, str) and key in table:
            return table[key]
        if step.get("case_insensitive") and isinstance(key, str):
            for k, v in table.items():
                if k.lower() == key.lower():
                    return v
        if "default" in step:
            return step["default"]
        raise _StepError(f"{value!r} is not in the lookup map (known: {sorted(table)[:10]})")
    if op == "select":
        options = (ctx.get("select_options") or {}).get(step.get("field") or ctx["field"])
        if options is None:
            return value
        for opt in options:
            if isinstance(opt, dict):
                candidates = [opt.get("value")]
                lab = opt.get("label")
                candidates += list(lab.values()) if isinstance(lab, dict) else [lab]
                if value in candidates:
                    return opt.get("value")
            elif value == opt:
                return opt
        if "default" in step:
            return step["default"]
        raise _StepError(f"{value!r} is not an option of the select field")
    if op == "strip":
        return value.strip() if isinstance(value, str) else value
    if op == "upper":
        return str(value).upper()
    if op == "lower":
        return str(value).lower()
    if op == "split":
        return [p.strip() for p in str(value).split(step.get("sep", ",")) if p.strip()]
    if op == "join":
        return step.get("sep", ",").join(str(v) for v in (value or []) if not _empty(v))
    if op == "first":
        return value[0] if isinstance(value, list) and value else value
    if op == "sum":
        return _num_out(sum((_to_decimal(v) for v in (value or []) if not _empty(v)), Decimal(0)))
    raise _StepError(f"unknown transform {op!r}")  # pragma: no cover - schema prevents it


def _steps(spec: Any) -> list[dict]:
    if spec is None:
        return []
    if not isinstance(spec, list):
        spec = [spec]
    return [{"op": s} if isinstance(s, str) else s for s in spec]


# --------------------------------------------------------------------------- the engine
def mapping_problems(doc: Any) -> list[str]:
    """Every problem in a mapping document as ``"<mapping path>: <message>"``."""
    if not isinstance(doc, dict):
        return ["(root): mapping must be an object"]
    out = []
    for e in sorted(_validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        p = ".".join(str(x) for x in e.absolute_path) or "(root)"
        if e.validator == "oneOf" and e.context:  # explain the most relevant branch
            best = best_match([e])
            bp = ".".join(str(x) for x in best.absolute_path) or "(root)"
            out.append(f"{bp}: {best.message}")
        else:
            out.append(f"{p}: {e.message}")
    if out:
        return out

    def check_fields(prefix: str, fields: dict):
        for name, spec in fields.items():
            spec = {"path": spec} if isinstance(spec, str) else spec
            paths = spec.get("path")
            for i, path in enumerate(paths if isinstance(paths, list) else ([paths] if paths else [])):
                try:
                    parse_path(path)
                except ValueError as exc:
                    where = f"{prefix}.{name}.path" + (f"[{i}]" if isinstance(paths, list) else "")
                    out.append(f"{where}: {exc}")
            if "template" in spec and (err := check_syntax(spec["template"])):
                out.append(f"{prefix}.{name}.template: {err}")
            for i, step in enumerate(_steps(spec.get("transform"))):
                if step["op"] == "template" and (err := check_syntax(step.get("template", ""))):
                    out.append(f"{prefix}.{name}.transform[{i}].template: {err}")
                if step["op"] == "lookup" and "map" not in step:
                    out.append(f"{prefix}.{name}.transform[{i}]: lookup needs a 'map'")
                if "source_tz" in step:
                    try:
                        ZoneInfo(step["source_tz"])
                    except (ZoneInfoNotFoundError, ValueError):
                        out.append(f"{prefix}.{name}.transform[{i}].source_tz: unknown time zone "
                                   f"{step['source_tz']!r}")

    check_fields("fields", doc["fields"])
    for sub, sdoc in (doc.get("subtables") or {}).items():
        try:
            parse_path(sdoc["path"])
        except ValueError as exc:
            out.append(f"subtables.{sub}.path: {exc}")
        check_fields(f"subtables.{sub}.fields", sdoc["fields"])
    if doc.get("root"):
        try:
            parse_path(doc["root"])
        except ValueError as exc:
            out.append(f"root: {exc}")
    return out


def validate_mapping(doc: Any) -> None:
    """Raise :class:`MappingError` listing every problem (each names its mapping path)."""
    problems = mapping_problems(doc)
    if problems:
        raise MappingError([MappingIssue(*p.split(": ", 1)) for p in problems])


class FieldMapping:
    """A validated mapping document. ``FieldMapping(doc).apply(payload, tz="Asia/Shanghai")``."""

    def __init__(self, doc: dict):
        validate_mapping(doc)
        self.doc = copy.deepcopy(doc)
        self.table: str = doc["table"]
        self.event_types = set(doc.get("event_types") or [])

    def matches(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def apply(self, payload: Any, *, tz: str = "UTC", select_options: dict | None = None,
              strict: bool = True) -> MappedRecord:
        """Map ``payload`` to record values. ``tz`` is the tenant time zone (datetimes are
        rendered in it). ``select_options`` maps field name → list of allowed options
        (``{"value":…, "label":…}`` or plain values) for ``select`` transforms.
        ``strict``: raise :class:`MappingError` on any issue; otherwise return the values
        that mapped and list the issues (failed fields are left out)."""
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise MappingError([MappingIssue("(tenant tz)", f"unknown time zone {tz!r}")]) from None
        root = payload
        if self.doc.get("root"):
            root = get(self.doc["root"], payload)
        issues: list[MappingIssue] = []
        values = self._map_fields("fields", self.doc["fields"], root, MISSING, zone,
                                  select_options, issues)
        subtables = {}
        for sub, sdoc in (self.doc.get("subtables") or {}).items():
            rows = []
            for ppath, item in find(sdoc["path"], root):
                rows.append(self._map_fields(f"subtables.{sub}.fields", sdoc["fields"], root,
                                             item, zone, select_options, issues, item_path=ppath))
            subtables[sub] = rows
        if issues and strict:
            raise MappingError(issues)
        return MappedRecord(self.table, values, subtables, issues)

    def _map_fields(self, prefix, fields, root, item, zone, select_options, issues, item_path=None):
        out = {}
        vars_ = {"payload": root, "item": None if item is MISSING else item}
        for name, spec in fields.items():
            spec = {"path": spec} if isinstance(spec, str) else spec
            mpath = f"{prefix}.{name}"
            ppath = None
            try:
                if "const" in spec:
                    value = copy.deepcopy(spec["const"])
                elif "template" in spec:
                    value = render(spec["template"], vars_, what="template", strict=False)
                else:
                    paths = spec["path"] if isinstance(spec["path"], list) else [spec["path"]]
                    value = None
                    for p in paths:
                        value = get(p, root, item=item)
                        ppath = p.replace("@", item_path, 1) if (p.startswith("@") and item_path) else p
                        if not _empty(value):
                            break
            except TemplateRenderError as exc:
                issues.append(MappingIssue(f"{mpath}.template", exc.message))
                continue
            ctx = {"tz": zone, "vars": vars_, "field": name, "select_options": select_options}
            failed = False
            for i, step in enumerate(_steps(spec.get("transform"))):
                try:
                    value = _apply_step(step, value, ctx)
                except (_StepError, TemplateRenderError) as exc:
                    msg = exc.message if isinstance(exc, TemplateRenderError) else str(exc)
                    issues.append(MappingIssue(f"{mpath}.transform[{i}]", f"{step['op']}: {msg}", ppath))
                    failed = True
                    break
            if failed:
                continue
            if _empty(value) and "default" in spec:
                value = copy.deepcopy(spec["default"])
            if _empty(value) and spec.get("required"):
                issues.append(MappingIssue(mpath, "required value is missing", ppath))
                continue
            out[name] = value
        return out


def apply_mapping(doc: dict, payload: Any, **kw) -> MappedRecord:
    """One-shot convenience: ``FieldMapping(doc).apply(payload, **kw)``."""
    return FieldMapping(doc).apply(payload, **kw)
