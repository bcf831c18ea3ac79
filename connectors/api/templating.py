"""Sandboxed Jinja2 rendering for admin-editable templates (message bodies, request bodies,
mapping templates). ImmutableSandboxedEnvironment: no attribute access to internals, no
mutation of the data passed in. Undefined variables are errors, not silent blanks."""
from __future__ import annotations

import contextvars
import json
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from .errors import PermanentError
from .textformat import escape_for

#: the escape function of the render in progress (mode "escape")
_ESCAPE: contextvars.ContextVar = contextvars.ContextVar("zs_connector_template_escape", default=None)


def _tojson(value: Any) -> str:
    out = json.dumps(value, ensure_ascii=False)
    # already JSON: an escaping render (a JSON body) leaves it as it is
    return Markup(out) if _ESCAPE.get() is not None else out


def _finalize_escaped(value):
    # template text is never finalized; constants are, at compile time, with no escape set
    esc = _ESCAPE.get()
    if esc is None or isinstance(value, Markup):
        return value
    return esc(value if isinstance(value, str) else str(value))


@lru_cache(maxsize=6)
def environment(strict: bool = True, mode: bool | str = False) -> ImmutableSandboxedEnvironment:
    """Strict (messages, request bodies): a typo in a variable name is an error.
    Lenient (field mappings): a field missing from a payload renders as empty.
    ``mode``: False plain text, True HTML (values autoescaped), "escape" values escaped by
    the function :func:`render` was given (robot markdown)."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined if strict else ChainableUndefined,
                                        autoescape=mode is True, keep_trailing_newline=True,
                                        **({"finalize": _finalize_escaped} if mode == "escape" else {}))
    env.filters["tojson"] = _tojson  # unicode-preserving, no HTML escaping
    return env


@lru_cache(maxsize=512)
def _compile(source: str, strict: bool = True, mode: bool | str = False):
    return environment(strict, mode).from_string(source)


class TemplateRenderError(PermanentError):
    code = "template_error"


def render(source: str, data: dict, *, what: str = "template", strict: bool = True, html=False) -> str:
    """``html``: False (plain text), True (HTML: values from ``data`` are HTML-escaped) or a
    function str -> str escaping each value printed by ``{{ }}`` for another markup. The
    template's own text and values marked ``|safe`` are left as written."""
    mode = "escape" if callable(html) else bool(html)
    token = _ESCAPE.set(html if mode == "escape" else None)
    try:
        return _compile(source, strict, mode).render(**data)
    except TemplateError as exc:
        raise TemplateRenderError(f"{what}: {type(exc).__name__}: {exc}") from None
    finally:
        _ESCAPE.reset(token)


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


#: the ``data`` property of an action whose text fields may be templates (input_texts)
DATA_SCHEMA = {"type": "object", "description": "Variables for templates in the text fields, for direct calls; "
               "without it the texts are sent as given. Rules leave it out: they render their texts themselves."}


def input_texts(input: dict):
    """How an action's text fields become the text that is sent: sandboxed templates over
    ``input["data"]`` when the caller gave ``data``, otherwise final text sent as given.

    The returned ``text(source, what, fmt=None)`` takes the field's markup (``"html"``, a
    markdown dialect; see :mod:`.textformat`): the values from ``data`` are escaped for it,
    as a rule's notify escapes record values, so data cannot add markup (links, images,
    mentions, ``<script>``) to the author's template.

    Rules call actions without ``data``: a rule's notify renders its texts itself, once,
    with the record. Rendering them again here would run any ``{{ }}`` / ``{% %}`` that a
    customer typed into the record (template injection from data)."""
    if "data" not in input:
        return lambda source, what="template", fmt=None: source
    variables = input["data"] or {}
    return lambda source, what="template", fmt=None: render(source, variables, what=what, html=escape_for(fmt))
