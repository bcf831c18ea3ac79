"""The connector manifest: a declarative description of what a connector offers.

A manifest is plain data (a dict that is valid against :data:`MANIFEST_SCHEMA`, JSON Schema
Draft 2020-12). :class:`Manifest` is its typed, immutable form. The admin UI renders install
forms from ``config_schema`` / ``credential_schema``, lists ``inbound`` events and
``actions`` in the rule builder, and offers ``mappings`` as editable defaults.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from .errors import ConfigError

LABELS_SCHEMA = {
    "type": "object",
    "required": ["zh-CN", "en"],
    "properties": {"zh-CN": {"type": "string", "minLength": 1},
                   "en": {"type": "string", "minLength": 1}},
    "additionalProperties": {"type": "string"},
}

TEXT_SCHEMA = {"oneOf": [{"type": "string"}, LABELS_SCHEMA]}

JSON_SCHEMA_OBJECT = {
    "type": "object",
    "description": "A JSON Schema (Draft 2020-12) for an object.",
    "properties": {"type": {"const": "object"}},
    "required": ["type"],
}

MANIFEST_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://zhongshu.dev/schemas/connector-manifest.json",
    "title": "Zhongshu connector manifest",
    "type": "object",
    "required": ["name", "version", "labels", "config_schema", "credential_schema"],
    "additionalProperties": False,
    "properties": {
        "api_version": {"const": 1, "default": 1},
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,63}$"},
        "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+([.+-][0-9A-Za-z.+-]+)?$"},
        "labels": LABELS_SCHEMA,
        "description": TEXT_SCHEMA,
        "icon": {"type": "string", "description": "Inline SVG markup or a file name in the package"},
        "categories": {"type": "array", "items": {"type": "string"}},
        "config_schema": JSON_SCHEMA_OBJECT,
        "credential_schema": JSON_SCHEMA_OBJECT,
        "inbound": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "event_types"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"enum": ["webhook", "pull"]},
                    "event_types": {"type": "array", "minItems": 1,
                                    "items": {"type": "string", "pattern": r"^[a-z_]+(\.[a-z_]+)+$"}},
                    "labels": LABELS_SCHEMA,
                    "description": TEXT_SCHEMA,
                    "payload_schema": {"type": "object"},
                    "default_interval_seconds": {"type": "integer", "minimum": 10},
                },
            },
        },
        "actions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "labels", "input_schema"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "labels": LABELS_SCHEMA,
                    "description": TEXT_SCHEMA,
                    "input_schema": JSON_SCHEMA_OBJECT,
                    "output_schema": {"type": "object"},
                    "idempotent": {"type": "boolean", "description":
                                   "True if the remote side deduplicates by idempotency key"},
                },
            },
        },
        "mappings": {"type": "array", "items": {"type": "object"},
                     "description": "Default field mappings; each valid against MAPPING_SCHEMA"},
        "connection_test": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "supported": {"type": "boolean"},
                "description": TEXT_SCHEMA,
            },
        },
    },
}

_validator = Draft202012Validator(MANIFEST_SCHEMA)


def _path(error) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(root)"


def validate_manifest(data: dict) -> None:
    """Raise :class:`ConfigError` naming every problem if ``data`` is not a valid manifest."""
    if not isinstance(data, dict):
        raise ConfigError("manifest must be an object", path="(root)")
    errors = sorted(_validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    problems = []
    for e in errors:
        problems.append(f"{_path(e)}: {e.message}")
    # the embedded schemas must themselves be valid JSON Schemas
    for key in ("config_schema", "credential_schema"):
        if isinstance(data.get(key), dict):
            try:
                Draft202012Validator.check_schema(data[key])
            except Exception as exc:  # jsonschema.SchemaError
                problems.append(f"{key}: not a valid JSON Schema: {getattr(exc, 'message', exc)}")
    names = [a.get("name") for a in data.get("actions") or [] if isinstance(a, dict)]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        problems.append(f"actions: duplicate action names {sorted(dupes)}")
    if data.get("mappings"):
        from .mapping import mapping_problems  # local import: mapping imports nothing from here
        for i, m in enumerate(data["mappings"]):
            problems.extend(f"mappings/{i}/{p}" for p in mapping_problems(m))
    if problems:
        raise ConfigError("invalid manifest: " + "; ".join(problems), path=_path(errors[0]) if errors else "",
                          code="manifest_invalid", details={"problems": problems})


@dataclass(frozen=True)
class InboundSpec:
    kind: str  # "webhook" | "pull"
    event_types: tuple[str, ...]
    labels: dict | None = None
    description: Any = None
    payload_schema: dict | None = None
    default_interval_seconds: int | None = None


@dataclass(frozen=True)
class ActionSpec:
    name: str
    labels: dict
    input_schema: dict
    output_schema: dict | None = None
    description: Any = None
    idempotent: bool = False


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    labels: dict
    config_schema: dict
    credential_schema: dict
    description: Any = None
    icon: str | None = None
    categories: tuple[str, ...] = ()
    inbound: tuple[InboundSpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    mappings: tuple[dict, ...] = ()
    connection_test: dict = field(default_factory=lambda: {"supported": True})
    api_version: int = 1

    @classmethod
    def from_dict(cls, data: dict) -> "Manifest":
        """Validate and build. Raises :class:`ConfigError` listing every problem."""
        validate_manifest(data)
        d = copy.deepcopy(data)
        return cls(
            name=d["name"], version=d["version"], labels=d["labels"],
            config_schema=d["config_schema"], credential_schema=d["credential_schema"],
            description=d.get("description"), icon=d.get("icon"),
            categories=tuple(d.get("categories") or ()),
            inbound=tuple(InboundSpec(kind=i["kind"], event_types=tuple(i["event_types"]),
                                      labels=i.get("labels"), description=i.get("description"),
                                      payload_schema=i.get("payload_schema"),
                                      default_interval_seconds=i.get("default_interval_seconds"))
                          for i in d.get("inbound") or ()),
            actions=tuple(ActionSpec(name=a["name"], labels=a["labels"], input_schema=a["input_schema"],
                                     output_schema=a.get("output_schema"), description=a.get("description"),
                                     idempotent=a.get("idempotent", False))
                          for a in d.get("actions") or ()),
            mappings=tuple(d.get("mappings") or ()),
            connection_test=d.get("connection_test") or {"supported": True},
            api_version=d.get("api_version", 1),
        )

    def to_dict(self) -> dict:
        """JSON-able form (for the REST API / admin UI); round-trips through from_dict."""
        out: dict = {"api_version": self.api_version, "name": self.name, "version": self.version,
                     "labels": self.labels, "config_schema": self.config_schema,
                     "credential_schema": self.credential_schema,
                     "connection_test": self.connection_test}
        if self.description is not None:
            out["description"] = self.description
        if self.icon is not None:
            out["icon"] = self.icon
        if self.categories:
            out["categories"] = list(self.categories)
        out["inbound"] = [{k: v for k, v in {
            "kind": i.kind, "event_types": list(i.event_types), "labels": i.labels,
            "description": i.description, "payload_schema": i.payload_schema,
            "default_interval_seconds": i.default_interval_seconds}.items() if v is not None}
            for i in self.inbound]
        out["actions"] = [{k: v for k, v in {
            "name": a.name, "labels": a.labels, "description": a.description,
            "input_schema": a.input_schema, "output_schema": a.output_schema,
            "idempotent": a.idempotent}.items() if v is not None}
            for a in self.actions]
        out["mappings"] = [copy.deepcopy(m) for m in self.mappings]
        return copy.deepcopy(out)

    def action(self, name: str) -> ActionSpec:
        for a in self.actions:
            if a.name == name:
                return a
        from .errors import PermanentError
        raise PermanentError(f"connector {self.name!r} has no action {name!r}; "
                             f"available: {[a.name for a in self.actions]}", code="unknown_action")

    @property
    def supports_webhook(self) -> bool:
        return any(i.kind == "webhook" for i in self.inbound)

    @property
    def supports_pull(self) -> bool:
        return any(i.kind == "pull" for i in self.inbound)

    def event_types(self) -> list[str]:
        seen: list[str] = []
        for i in self.inbound:
            seen.extend(e for e in i.event_types if e not in seen)
        return seen
