"""Field types. Importing this package registers every built-in type."""
from . import choice, computed, number, other, relations, text, time  # noqa: F401  (registration)
from .base import Ctx, FieldSpec, FieldType, FieldValueError, FilterError
from .registry import all_types, field_schema, get, names, register

__all__ = ["Ctx", "FieldSpec", "FieldType", "FieldValueError", "FilterError",
           "all_types", "field_schema", "get", "names", "register"]
