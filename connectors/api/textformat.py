"""Markup of an action's text fields, so values from record data are escaped for it.

A rule's (or a direct caller's) message text is a template written by its author in the
markup the service renders: HTML for an e-mail's ``html`` part, markdown for a DingTalk or
WeCom robot's ``markdown`` message and DingTalk's ActionCard. The values put into it (a
customer's name, an order remark) are text: printed as they are they could add links,
images, mentions or coloured text that the author never wrote (a name typed as
``[点我](http://evil.example)``, ``<@all>`` or ``<font color="warning">``). Each connector
says which input fields are in which markup (:meth:`Connector.text_formats`); whoever
renders the templates escapes the printed values for it.

Formats: ``"html"`` (HTML autoescape), ``"markdown_dingtalk"``, ``"markdown_wecom"``,
``"json"`` (a JSON body template: values are escaped as the inside of a JSON string, so a
customer's ``", "status": "refunded`` cannot add a key; ``|tojson`` output is left as is).
Fields not named are plain text (SMS, a text message, titles shown as plain text): sent
as they are.
"""
from __future__ import annotations

import json
import re
from typing import Callable

HTML = "html"
MARKDOWN_DINGTALK = "markdown_dingtalk"
MARKDOWN_WECOM = "markdown_wecom"
JSON = "json"

# What starts markup inside a line: link and image brackets (``[x](u)``, ``![x](u)``,
# ``[x][ref]``), code spans, and HTML-like tags (``<font color=…>``, WeCom ``<@userid>``
# mentions, ``<http://…>`` autolinks). Brackets and backticks get a backslash (CommonMark);
# ``<``/``>`` become entities, which both robots' renderers show as the characters.
_INLINE = {"\\": "\\\\", "[": "\\[", "]": "\\]", "`": "\\`", "<": "&lt;", ">": "&gt;"}
_INLINE_RE = re.compile(r"[\\\[\]`<>]")
# What starts a block at the beginning of a line of the value: a heading, a list item, a
# rule or a setext underline (``>`` quotes are covered by the entity above).
_LINE_START_RE = re.compile(r"(^|\n)([ \t]*)(#{1,6}|[-+*]|\d{1,9}[.)]|=+|-{2,})(?=[ \t\n]|$)")


def escape_markdown(value: str) -> str:
    """A value as literal text in robot markdown: no link, image, tag, mention, code span,
    heading or list item can come out of it. Emphasis characters (``*``, ``_``, ``~``)
    inside a line are left alone: they change no meaning and do not break record links,
    whose addresses carry ``_`` (table names) and ``#`` (the builder's route)."""
    if not value:
        return value
    out = _INLINE_RE.sub(lambda m: _INLINE[m.group(0)], value)
    return _LINE_START_RE.sub(_escape_line_start, out)


def _escape_line_start(m: re.Match) -> str:
    marker = m.group(3)
    if marker[0].isdigit():  # "1." -> "1\." (a backslash before a digit is no escape)
        marker = f"{marker[:-1]}\\{marker[-1]}"
    else:
        marker = "\\" + marker
    return f"{m.group(1)}{m.group(2)}{marker}"


def escape_json_string(value: str) -> str:
    """A value as the inside of a JSON string: ``"`` and ``\\`` get a backslash, control
    characters (a newline in a remark) become escapes. Inside quotes it is the value; a
    number printed outside quotes (``"qty": {{ record.qty }}``) is unchanged."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


#: format -> what the template renderers take as their ``html`` argument: True for HTML
#: autoescape, or an escape function applied to every value printed by ``{{ }}``.
#: DingTalk and WeCom render the same markdown subset for the purpose here (links, images,
#: ``<font>`` tags; WeCom also ``<@userid>`` mentions), so they share one escape.
ESCAPES: dict[str, bool | Callable[[str], str]] = {
    HTML: True,
    MARKDOWN_DINGTALK: escape_markdown,
    MARKDOWN_WECOM: escape_markdown,
    JSON: escape_json_string,
}


def escape_for(fmt: str | None):
    """The ``html`` argument of a renderer for a field in ``fmt`` (False: plain text)."""
    return ESCAPES.get(fmt, False) if fmt else False
