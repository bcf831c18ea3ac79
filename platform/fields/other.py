"""Other field types: json, attachment."""
from __future__ import annotations

import json

from sqlalchemy import Text

from .base import EMPTY_OPS, FieldType, FieldValueError
from .registry import register

MAX_JSON = 256 * 1024


@register
class Json(FieldType):
    name = "json"
    label = {"zh-CN": "JSON", "en": "JSON"}
    operators = ("contains", *EMPTY_OPS)
    sortable = False

    def column_type(self, spec):
        return Text()

    def to_storage(self, value, spec, ctx):
        if value is None:
            return None
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            raise FieldValueError("must be JSON data", "应为 JSON 数据") from None
        if len(text) > MAX_JSON:
            raise FieldValueError(f"is larger than {MAX_JSON // 1024} KB", f"超过 {MAX_JSON // 1024} KB")
        return text

    def from_storage(self, value, spec, ctx):
        return None if value is None else json.loads(value)

    def filter(self, col, op, value, spec, ctx):
        if op == "contains":
            from .base import escape_like

            return col.like(f"%{escape_like(str(value))}%", escape="\\")
        return super().filter(col, op, value, spec, ctx)


@register
class Attachment(FieldType):
    """Files: a list of {token, filename, size, content_type}; the file itself is uploaded
    first (POST /attachments) and kept on local disk under the data folder."""

    name = "attachment"
    label = {"zh-CN": "附件", "en": "Attachment"}
    operators = EMPTY_OPS
    sortable = False
    options_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "max_files": {"type": "integer", "minimum": 1, "maximum": 100},
            "accept": {"type": "array", "items": {"type": "string", "maxLength": 100}},
        },
    }

    def column_type(self, spec):
        return Text()

    def to_storage(self, value, spec, ctx):
        if value is None or value == []:
            return None
        if not isinstance(value, list):
            value = [value]
        limit = spec.options.get("max_files", 20)
        if len(value) > limit:
            raise FieldValueError(f"at most {limit} files", f"最多 {limit} 个文件")
        tokens = []
        for v in value:
            t = v.get("token") if isinstance(v, dict) else v
            if not isinstance(t, str) or not t.isalnum() or len(t) > 64:
                raise FieldValueError("each file must be an uploaded attachment token", "每个文件应为已上传附件的 token")
            tokens.append(t)
        # Resolved to file details (and checked to belong to the tenant) by the records service.
        return json.dumps(tokens)

    def from_storage(self, value, spec, ctx):
        return json.loads(value) if value else []

    def is_empty(self, stored):
        return not stored
