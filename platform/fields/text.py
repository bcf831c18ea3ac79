"""Text-like field types: text, long_text, email, phone, url, address."""
from __future__ import annotations

import functools
import json
import re
from urllib.parse import quote

from sqlalchemy import Text, or_

from .base import EMPTY_OPS, Ctx, FieldSpec, FieldType, FieldValueError, FilterError, escape_like, loads_stored_json
from .registry import register

TEXT_OPS = ("=", "!=", "contains", "not_contains", "starts_with", "ends_with", "in", "not_in", "<", ">", *EMPTY_OPS)


class TextType(FieldType):
    name = "text"
    label = {"zh-CN": "单行文本", "en": "Text"}
    options_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {"max_length": {"type": "integer", "minimum": 1, "maximum": 100000}},
    }
    operators = TEXT_OPS
    searchable = True
    default_max = 1000

    def column_type(self, spec):
        return Text()

    def to_storage(self, value, spec: FieldSpec, ctx: Ctx):
        if value is None:
            return None
        if isinstance(value, bool):
            value = "是" if value else "否"
        if isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise FieldValueError("must be text", "应为文本")
        limit = spec.options.get("max_length", self.default_max)
        if len(value) > limit:
            raise FieldValueError(f"is longer than {limit} characters", f"超过 {limit} 个字符")
        return self.normalise(value)

    def normalise(self, value: str) -> str:
        return value

    def writer(self, spec, ctx):
        limit = spec.options.get("max_length", self.default_max)
        to_storage = self.to_storage
        if type(self).normalise is not TextType.normalise or type(self).to_storage is not TextType.to_storage:
            return super().writer(spec, ctx)

        def write(value):
            if type(value) is str and len(value) <= limit:
                return value
            return to_storage(value, spec, ctx)
        return write

    def filter(self, col, op, value, spec, ctx):
        if op in ("contains", "not_contains", "starts_with", "ends_with"):
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise FilterError(f"{spec.api_name}: '{op}' needs text", f"{spec.api_name}: '{op}' 需要文本")
            term = escape_like(str(value))
            pattern = {"contains": f"%{term}%", "not_contains": f"%{term}%",
                       "starts_with": f"{term}%", "ends_with": f"%{term}"}[op]
            like = col.ilike(pattern, escape="\\") if ctx.dialect == "postgresql" else col.like(pattern, escape="\\")
            return or_(~like, col.is_(None)) if op == "not_contains" else like
        return super().filter(col, op, value, spec, ctx)



@register
class Text_(TextType):
    pass


@register
class LongText(TextType):
    name = "long_text"
    label = {"zh-CN": "多行文本", "en": "Long text"}
    default_max = 100000
    operators = ("contains", "not_contains", "starts_with", *EMPTY_OPS)
    sortable = False


EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


@register
class Email(TextType):
    name = "email"
    label = {"zh-CN": "邮箱", "en": "Email"}
    options_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def normalise(self, value):
        value = value.strip()
        if value and not EMAIL_RE.match(value):
            raise FieldValueError(f"{value!r} is not an email address", f"{value!r} 不是有效的邮箱地址")
        return value or None


PHONE_RE = re.compile(r"^\+?[0-9][0-9 \-()]{4,30}$")


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    digits = value.replace(" ", "").replace("-", "")
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return digits[:1] + "*" * (len(digits) - 1)


@register
class Phone(TextType):
    name = "phone"
    label = {"zh-CN": "电话", "en": "Phone"}
    options_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {"mask": {"enum": ["none", "middle"], "description": "how the number shows where masking applies (public pages, masked permission)"}},
    }

    def normalise(self, value):
        value = value.strip()
        if value and not PHONE_RE.match(value):
            raise FieldValueError(f"{value!r} is not a phone number", f"{value!r} 不是有效的电话号码")
        return value or None

    def mask(self, value, spec):
        return mask_phone(value)


@register
class Url(TextType):
    name = "url"
    label = {"zh-CN": "网址", "en": "URL"}
    options_schema = {"type": "object", "additionalProperties": False, "properties": {}}
    default_max = 2048

    def normalise(self, value):
        value = value.strip()
        if value and not re.match(r"^https?://[^\s]+$", value, re.I):
            raise FieldValueError(f"{value!r} is not a web address (http:// or https://)", f"{value!r} 不是有效网址(需以 http:// 或 https:// 开头)")
        return value or None


ADDRESS_KEYS = ("country", "province", "city", "district", "detail", "postcode", "lat", "lng")
_TEXT_PARTS = frozenset(ADDRESS_KEYS) - {"lat", "lng"}
_SORTED_TEXT_PARTS = tuple(sorted(_TEXT_PARTS))
#: a str as JSON text with non-ASCII kept: the string encoder json.dumps(ensure_ascii=False) uses
_encode_str = json.encoder.encode_basestring


@register
class Address(FieldType):
    """An address: plain text, or parts (province, city, district, detail, lat/lng).

    Stored as JSON text so that ``contains`` works on any part; shown with a map link.
    """

    name = "address"
    label = {"zh-CN": "地址", "en": "Address"}
    operators = ("contains", "not_contains", *EMPTY_OPS)
    searchable = True
    sortable = False

    def column_type(self, spec):
        return Text()

    def to_storage(self, value, spec, ctx):
        if value is None or value == "":
            return None
        if isinstance(value, str):
            if len(value) > 1000:
                raise FieldValueError("is longer than 1000 characters", "超过 1000 个字符")
            value = {"detail": value}
        if not isinstance(value, dict):
            raise FieldValueError("must be text or an object with province, city, district, detail", "应为文本,或包含 province/city/district/detail 的对象")
        unknown = set(value) - set(ADDRESS_KEYS) - {"map_url", "text"}
        if unknown:
            raise FieldValueError(f"unknown address parts: {', '.join(sorted(unknown))}", f"不认识的地址部分: {', '.join(sorted(unknown))}")
        clean = {}
        for k in ADDRESS_KEYS:
            v = value.get(k)
            if v is None or v == "":
                continue
            if k in ("lat", "lng"):
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise FieldValueError(f"{k} must be a number", f"{k} 应为数字") from None
                if not (-180 <= v <= 180):
                    raise FieldValueError(f"{k} is out of range", f"{k} 超出范围")
            elif not isinstance(v, str) or len(v) > 500:
                raise FieldValueError(f"{k} must be text (at most 500 characters)", f"{k} 应为文本(最多 500 字)")
            clean[k] = v
        return json.dumps(clean, ensure_ascii=False, sort_keys=True) if clean else None

    def writer(self, spec, ctx):
        """``to_storage`` for many values: an object of text parts is checked with one set
        comparison and written by hand in the same text ``json.dumps(sort_keys=True,
        ensure_ascii=False)`` gives (twice as fast as the encoder); anything else
        (coordinates, a plain text, a bad or unknown part) goes the long way."""
        to_storage = self.to_storage
        if type(self).to_storage is not Address.to_storage:
            return super().writer(spec, ctx)
        keys, enc = _SORTED_TEXT_PARTS, _encode_str

        def write(value):
            if type(value) is not dict or not value.keys() <= _TEXT_PARTS:
                return to_storage(value, spec, ctx)
            out = []
            for k in keys:
                v = value.get(k)
                if v:
                    if type(v) is not str or len(v) > 500:
                        return to_storage(value, spec, ctx)
                    out.append(f'"{k}": {enc(v)}')
                elif v is not None and type(v) is not str:  # 0, False, []: the long way says why
                    return to_storage(value, spec, ctx)
            return "{" + ", ".join(out) + "}" if out else None
        return write

    def from_storage(self, value, spec, ctx):
        if not value:
            return None
        return dict(_address_parts(value))  # a copy: callers may change theirs

    def reader(self, spec, ctx):
        return lambda v: dict(_address_parts(v)) if v else None

    def convert(self, old_value_json, old, new, ctx):
        if isinstance(old_value_json, dict):
            return self.to_storage({k: v for k, v in old_value_json.items() if k in ADDRESS_KEYS}, new, ctx)
        return super().convert(old_value_json, old, new, ctx)

    def filter(self, col, op, value, spec, ctx):
        if op in ("contains", "not_contains"):
            if not isinstance(value, str):
                raise FilterError(f"{spec.api_name}: '{op}' needs text", f"{spec.api_name}: '{op}' 需要文本")
            # JSON text stores non-ASCII as-is (ensure_ascii=False), so LIKE sees the words.
            like = col.like(f"%{escape_like(value)}%", escape="\\")
            return or_(~like, col.is_(None)) if op == "not_contains" else like
        return super().filter(col, op, value, spec, ctx)


@functools.lru_cache(maxsize=4096)
def _address_parts(value: str) -> dict:
    """A stored address with its text and map link. Pages show the same addresses again and
    again; parsing and URL-quoting each time cost more than the rest of a row."""
    parts = loads_stored_json(value)
    get = parts.get
    place = "".join([get("province", ""), get("city", ""), get("district", "")])
    detail = get("detail", "")
    text = place + detail if type(detail) is str else "".join([place, detail])  # (not text: join's TypeError)
    parts["text"] = text
    if "lat" in parts and "lng" in parts:
        parts["map_url"] = f"https://uri.amap.com/marker?position={parts['lng']},{parts['lat']}"
    elif text:
        parts["map_url"] = f"https://uri.amap.com/search?keyword={_quote_place(place)}{_quote(detail)}"
    return parts


#: province + city + district -> URL-quoted: few distinct ones, while the detail differs
#: every time (a bulk load of 5,000 addresses hits the lru cache above almost never)
_PLACES_QUOTED: dict[str, str] = {}


def _quote_place(place: str) -> str:
    q = _PLACES_QUOTED.get(place)
    if q is None:
        q = _quote(place)
        if len(_PLACES_QUOTED) < 8192:
            _PLACES_QUOTED[place] = q
    return q


#: urllib.parse.quote(text) one byte at a time, from a table (a third of its time)
_QUOTED = tuple(chr(b) if (b < 128 and chr(b).isalnum()) or chr(b) in "_.-~/" else f"%{b:02X}" for b in range(256))


def _quote(text: str) -> str:
    return "".join([_QUOTED[b] for b in text.encode("utf-8")])
