"""The field type registry: one class per type; adding a type touches one module."""
from __future__ import annotations

from .base import FieldType

_TYPES: dict[str, FieldType] = {}


def register(cls: type[FieldType]) -> type[FieldType]:
    if cls.name in _TYPES:
        raise ValueError(f"field type {cls.name!r} registered twice")
    _TYPES[cls.name] = cls()
    return cls


def get(name: str) -> FieldType:
    return _TYPES[name]


def names() -> list[str]:
    return list(_TYPES)


def all_types() -> dict[str, FieldType]:
    return dict(_TYPES)


LABEL_REF = {"$ref": "table.json#/$defs/label"}
API_NAME_REF = {"$ref": "table.json#/$defs/api_name"}


def field_schema() -> dict:
    """The JSON Schema of a field definition, composed from every registered type."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://zhongshu.dev/schemas/field.json",
        "title": "Field definition",
        "type": "object",
        "required": ["api_name", "type"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "api_name": API_NAME_REF,
            "type": {"enum": names()},
            "label": LABEL_REF,
            "description": {"type": "string", "maxLength": 4000},
            "required": {"type": "boolean"},
            "unique": {"type": "boolean"},
            "indexed": {"type": "boolean", "description": "create an index for filters and sorts"},
            "default": {},
            "placeholder": {"type": "string", "maxLength": 200},
            "options": {"type": "object"},
        },
        "allOf": [
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {"properties": {"options": ft.options_schema}},
            }
            for name, ft in _TYPES.items()
        ],
    }
