"""Sandboxed Jinja2 rendering for admin-editable templates (message bodies, request bodies,
mapping templates). ImmutableSandboxedEnvironment: no attribute access to internals, no
mutation of the data passed in. Undefined variables are errors, not silent blanks."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import PermanentError


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@lru_cache(maxsize=2)
def environment(strict: bool = True) -> ImmutableSandboxedEnvironment:
    """Strict (messages, request bodies): a typo in a variable name is an error.
    Lenient (field mappings): a field missing from a payload renders as empty."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined if strict else ChainableUndefined,
                                        autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = _tojson  # unicode-preserving, no HTML escaping
    return env


@lru_cache(maxsize=512)
def _compile(source: str, strict: bool = True):
    return environment(strict).from_string(source)


class TemplateRenderError(PermanentError):
    code = "template_error"


def render(source: str, data: dict, *, what: str = "template", strict: bool = True) -> str:
    try:
        return _compile(source, strict).render(**data)
    except TemplateError as exc:
        raise TemplateRenderError(f"{what}: {type(exc).__name__}: {exc}") from None


def check_syntax(source: str) -> str | None:
    """Error message if ``source`` does not compile, else None."""
    try:
        environment().parse(source)
    except TemplateError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def render_json(source: str, data: dict, *, what: str = "body_template") -> Any:
    """Render a template that must produce JSON; returns the parsed value."""
    text = render(source, data, what=what)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TemplateRenderError(f"{what}: rendered text is not valid JSON ({exc}): {text[:80]!r}") from None
