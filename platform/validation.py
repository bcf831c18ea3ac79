"""JSON Schema (Draft 2020-12) validation with errors a business user can read.

Schemas ship in ``platform/schemas/*.json``; the field schema is composed from the field
type registry (each type declares its own ``options`` schema). All are served at
``/api/v1/schemas/<name>.json`` so a UI or a script can validate before sending.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from .errors import ValidationFailed, field_error
from .lru import LruCache

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_BASE = "https://zhongshu.dev/schemas/"
STATIC_SCHEMAS = ("filter", "table", "view", "dashboard", "app", "permissions")


@lru_cache(maxsize=None)
def load_static(name: str) -> dict:
    # A path next to this module: the namespace portion has no resource reader of its own.
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text("utf-8"))


#: Schemas composed in code from a registry (field types, rule actions); other parts add theirs.
DYNAMIC: dict = {}


#: Bumped whenever a schema may have changed; caches of "this was valid" include it.
generation = 0


def register_dynamic(name: str, build) -> None:
    global generation
    DYNAMIC[name] = build
    for cached in (schema, validator, _registry):
        cached.cache_clear()
    _VALID.clear()
    generation += 1


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    if name == "field":
        from .fields import registry

        return registry.field_schema()
    if name in DYNAMIC:
        return DYNAMIC[name]()
    if name not in STATIC_SCHEMAS:
        raise KeyError(name)
    return load_static(name)


def all_schema_names() -> list[str]:
    return sorted((*STATIC_SCHEMAS, "field", *DYNAMIC))


@lru_cache(maxsize=None)
def _registry() -> Registry:
    pairs = [(SCHEMA_BASE + f"{n}.json", Resource.from_contents(schema(n))) for n in all_schema_names()]
    return Registry().with_resources(pairs)


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), registry=_registry())


_TYPE_WORDS = {
    "string": ("text", "文本"), "integer": ("a whole number", "整数"), "number": ("a number", "数字"),
    "boolean": ("true or false", "是/否"), "object": ("an object {...}", "对象 {...}"),
    "array": ("a list [...]", "列表 [...]"), "null": ("empty", "空值"),
}


def _words(err) -> tuple[str, str]:
    v, val = err.validator, err.validator_value
    if v == "required":
        missing = [p for p in val if isinstance(err.instance, dict) and p not in err.instance]
        name = missing[0] if missing else val[0]
        return f"'{name}' is required", f"缺少必填项 '{name}'"
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {}))) if isinstance(err.instance, dict) else []
        return (f"unknown property {', '.join(map(repr, extra))}", f"不认识的属性 {', '.join(map(repr, extra))}")
    if v == "type":
        types = val if isinstance(val, list) else [val]
        en = " or ".join(_TYPE_WORDS.get(t, (t, t))[0] for t in types)
        zh = "或".join(_TYPE_WORDS.get(t, (t, t))[1] for t in types)
        return f"must be {en}", f"应为{zh}"
    if v == "enum":
        opts = ", ".join(map(str, val))
        return f"must be one of: {opts}", f"只能是以下之一: {opts}"
    if v == "const":
        return f"must be {val!r}", f"应为 {val!r}"
    if v == "pattern":
        hint = err.schema.get("description") or f"the pattern {val}"
        return f"{err.instance!r} does not match {hint}", f"{err.instance!r} 格式不对: {hint}"
    if v in ("minLength", "maxLength"):
        return (f"must be {'at least' if v == 'minLength' else 'at most'} {val} characters",
                f"长度应{'至少' if v == 'minLength' else '至多'} {val} 个字符")
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": "≥", "maximum": "≤", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        return f"must be {op} {val}", f"应 {op} {val}"
    if v in ("minItems", "maxItems"):
        return (f"must have {'at least' if v == 'minItems' else 'at most'} {val} items",
                f"应{'至少' if v == 'minItems' else '至多'}有 {val} 项")
    if v == "uniqueItems":
        return "items must not repeat", "列表项不能重复"
    return err.message, err.message


def _pointer(path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _leaf_errors(err):
    """For oneOf/anyOf, report the branch the user most likely meant (the one whose errors
    reach deepest into the document), not "is not valid under any of the given schemas"."""
    if not err.context:
        return [err]
    branches: dict = {}
    for sub in err.context:
        branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).extend(_leaf_errors(sub))
    best = max(branches.values(), key=lambda leaves: (max(len(l.absolute_path) for l in leaves), -len(leaves)))
    return best


#: (schema name, digest of the canonical JSON) of documents that passed: installing a template
#: into many tenants validates the very same definitions again and again. Only successes are
#: kept, as 16-byte digests, so the cache stays small whatever the documents' size.
_VALID: LruCache[bool] = LruCache(4096)


def canonical_digest(document) -> bytes | None:
    """A digest of the document's canonical JSON; None if the document is not plain JSON
    (a tuple, a non-text key, NaN...), which JSON would not tell apart from what the
    validator sees differently."""
    try:
        text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        if json.loads(text) != document:
            return None
    except (TypeError, ValueError, RecursionError):
        return None
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def errors_for(name: str, document, base_pointer: str = "") -> list[dict]:
    digest = canonical_digest(document)
    key = (name, digest)
    if digest is not None and _VALID.get(key):
        return []
    errs = _errors_for(name, document, base_pointer)
    if not errs and digest is not None:
        _VALID.put(key, True)
    return errs


def _errors_for(name: str, document, base_pointer: str) -> list[dict]:
    out = []
    for err in sorted(validator(name).iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        for leaf in _leaf_errors(err):
            en, zh = _words(leaf)
            out.append(field_error(base_pointer + _pointer(leaf.absolute_path), en, zh))
    # De-duplicate identical messages at the same pointer.
    seen, unique = set(), []
    for e in out:
        k = (e["pointer"], e["message"])
        if k not in seen:
            seen.add(k)
            unique.append(e)
    return unique


def validate(name: str, document, base_pointer: str = "") -> None:
    errs = errors_for(name, document, base_pointer)
    if errs:
        first = errs[0]
        raise ValidationFailed(
            f"invalid {name} definition: {first['pointer'] or '/'}: {first['message']}",
            message_zh=f"{name} 定义有误: {first['pointer'] or '/'}: {first['message_zh']}",
            errors=errs,
        )
