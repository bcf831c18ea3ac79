"""Sandboxed message templates (notifications, HTTP bodies) written by business users.

Templates are Jinja2, rendered by a hardened :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`:

* attribute access is an allow-list: dict keys (``order.items`` is the *key* ``items``),
  a few harmless text / dict methods, date parts and loop variables; anything starting
  with ``_`` and ``str.format`` / ``format_map`` raise immediately;
* only a curated set of filters (no ``attr``, ``format``, ``center``, ``slice``, ``pprint``...)
  plus ``mask_phone``, ``mask_name``, ``date`` (tenant timezone) and ``money``;
  no filter calls what it is given;
* only the ``range`` global (at most :data:`MAX_RANGE` numbers) -- no ``cycler``, ``joiner``,
  ``namespace``, ``lipsum``, ``dict``;
* no macros, ``call`` blocks, ``include`` / ``import`` / ``extends`` / ``block`` or block
  ``set``; names starting with ``_`` are refused;
* ``*``, ``**``, ``+``, ``%``, ``//`` are guarded (sizes, exponents; no ``"%s" % x``);
  every ``set`` / ``with`` value is size-checked, every ``for`` loop is counted against
  :data:`MAX_LOOP_ITERATIONS` per render, and a render stops after ``timeout`` seconds or
  ``max_output`` characters.

Public API::

    render_template(source, context, *, html=False, tz="Asia/Shanghai",
                    max_output=100_000, timeout=1.0) -> str          # raises TemplateError
    check_template(source, *, html=False) -> list[TemplateError]    # for save-time checks
    TemplateError: .code .message (zh-CN) .message_en .message_zh .line .message_for(locale)
"""
from __future__ import annotations

import contextvars
import datetime as _dt
import threading
import time
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Mapping

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from zhongshu.runtime.expressions.functions import _format_date, mask_name, mask_phone
from zhongshu.runtime.expressions.values import EvalContext, State, round_half_up, to_date_value

__all__ = ["render_template", "check_template", "TemplateError", "MAX_TEMPLATE_LENGTH",
           "MAX_OUTPUT", "MAX_LOOP_ITERATIONS", "MAX_RANGE", "clear_cache"]

MAX_TEMPLATE_LENGTH = 20_000     # characters of template source
MAX_OUTPUT = 100_000             # default cap on rendered characters
MAX_LOOP_ITERATIONS = 10_000     # for-loop iterations per render (all loops together)
MAX_RANGE = 10_000               # numbers range() may produce
MAX_VALUE_SIZE = 200_000         # size units of a value stored with set / with
MAX_STRING = 100_000             # text built by + or *
MAX_EXPONENT = 1_000
DEFAULT_TIMEOUT = 1.0
DEFAULT_LOCALE = "zh-CN"


class TemplateError(Exception):
    """A problem with a template: bilingual message, stable code and 1-based line."""

    def __init__(self, code: str, message_en: str, message_zh: str | None = None, line: int | None = None):
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh or message_en
        self.line = line
        super().__init__(str(self))

    @property
    def message(self) -> str:
        return self.message_for(DEFAULT_LOCALE)

    def message_for(self, locale: str | None) -> str:
        if locale and locale.lower().startswith("en"):
            return self.message_en
        return self.message_zh

    def to_dict(self, locale: str | None = None) -> dict:
        return {"code": self.code, "message": self.message_for(locale), "line": self.line}

    def __str__(self) -> str:
        return self.message_en + (f" (line {self.line})" if self.line else "")

    def __repr__(self):
        return f"TemplateError({self.code!r}, {self.message_en!r}, line={self.line!r})"


class _Limit(Exception):
    """Raised inside a render when a limit is hit; turned into TemplateError('limit')."""

    def __init__(self, en, zh):
        super().__init__(en)
        self.en, self.zh = en, zh


# ---------------------------------------------------------------------------------------
# Per-render budget
# ---------------------------------------------------------------------------------------

class _Budget:
    __slots__ = ("iterations", "deadline", "tz", "escape")

    def __init__(self, timeout: float, tz: str, escape=None):
        self.iterations = 0
        self.deadline = time.monotonic() + timeout
        self.tz = tz
        self.escape = escape

    def tick(self):
        self.iterations += 1
        if self.iterations > MAX_LOOP_ITERATIONS:
            raise _Limit(f"The template repeats too much (over {MAX_LOOP_ITERATIONS:,} loop iterations).",
                         f"模板循环次数过多（超过 {MAX_LOOP_ITERATIONS:,} 次）。")
        if not self.iterations & 0xFF:
            self.check_time()

    def check_time(self):
        if time.monotonic() > self.deadline:
            raise _Limit("The template took too long to render.", "模板渲染超时。")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("zs_template_budget", default=None)


def _budget() -> _Budget:
    b = _BUDGET.get()
    if b is None:                      # e.g. a template object used outside render_template
        b = _Budget(DEFAULT_TIMEOUT, "Asia/Shanghai")
        _BUDGET.set(b)
    return b


def _zs_iter(iterable):
    b = _budget()
    for item in iterable:
        b.tick()
        yield item


def _size(value, budget_left: int) -> int:
    """Approximate size of a value, stopping as soon as it exceeds budget_left."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is Markup:
            total += len(v)
        elif t in (list, tuple):
            total += 1 + len(v)
            if total <= budget_left:
                stack.extend(v)
        elif t is dict:
            total += 1 + len(v)
            if total <= budget_left:
                stack.extend(v.keys())
                stack.extend(v.values())
        else:
            total += 1
        if total > budget_left:
            return total
    return total


def _zs_guard(value):
    if _size(value, MAX_VALUE_SIZE) > MAX_VALUE_SIZE:
        raise _Limit("A value built by the template is too large.", "模板中生成的值过大。")
    return value


def _safe_range(*args):
    try:
        r = range(*(int(a) for a in args))
    except (TypeError, ValueError, OverflowError):
        raise _Limit("range() needs whole numbers.", "range() 需要整数。") from None
    if len(r) > MAX_RANGE:
        raise _Limit(f"range() is limited to {MAX_RANGE:,} numbers.", f"range() 最多生成 {MAX_RANGE:,} 个数。")
    return r


# ---------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------

def _f_mask_phone(value):
    return "" if value is None else mask_phone(str(value))


def _f_mask_name(value):
    return "" if value is None else mask_name(str(value))


def _f_date(value, fmt: str = "YYYY-MM-DD HH:mm"):
    """Format a date/datetime (or ISO text) in the tenant timezone: {{ created|date('YYYY年M月D日') }}."""
    if value is None or isinstance(value, jinja2.Undefined) or value == "":
        return ""
    if not isinstance(fmt, str) or len(fmt) > 100:
        raise _Limit("date: the format must be short text.", "date：格式必须是较短的文本。")
    s = State(EvalContext(tz=_budget().tz))
    try:
        v = to_date_value(value, s, "date")
    except Exception:
        return str(value)
    return _format_date(v, fmt, s)


def _f_money(value, symbol: str = "¥", decimals: int = 2):
    """{{ amount|money }} -> ¥1,234.50; {{ amount|money('$', 0) }} -> $1,235."""
    if value is None or isinstance(value, jinja2.Undefined) or value == "":
        return ""
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).replace(",", ""))
        decimals = max(0, min(int(decimals), 8))
        d = round_half_up(d, decimals)
    except Exception:
        return str(value)
    sign = "-" if d < 0 else ""
    return f"{sign}{str(symbol)[:5]}{abs(d):,.{decimals}f}"


def _html(eval_ctx, *values) -> bool:
    """In an HTML template, a filter given markup (``'<br>'|safe``) keeps it as markup and
    escapes the rest, like Jinja's own filters; otherwise its text result is escaped whole."""
    return eval_ctx.autoescape and any(hasattr(v, "__html__") for v in values)


@jinja2.pass_eval_context
def _f_replace(eval_ctx, value, old, new, count=None):
    html = _html(eval_ctx, value, old, new)
    if html:
        value, old, new = escape(value), escape(old), escape(new)
    s, old, new = str(value), str(old), str(new)
    n = s.count(old) if old else len(s) + 1
    if count is not None:
        n = min(n, max(int(count), 0))
    if len(s) + n * (len(new) - len(old)) > MAX_STRING:
        raise _Limit("replace: the result would be too long.", "replace：结果将会过长。")
    out = s.replace(old, new) if count is None else s.replace(old, new, int(count))
    return Markup(out) if html else out


@jinja2.pass_eval_context
def _f_join(eval_ctx, value, d: str = "", attribute=None):
    items = list(value) if not isinstance(value, str) else [value]
    if len(items) > MAX_LOOP_ITERATIONS:
        raise _Limit("join: too many items.", "join：项目过多。")
    html = _html(eval_ctx, d, *items)
    if html:
        d = escape(d)
    parts = []
    total = 0
    for it in items:
        if attribute is not None:
            it = it.get(attribute) if isinstance(it, dict) else None
        p = "" if it is None else str(escape(it) if html else it)
        total += len(p) + len(str(d))
        if total > MAX_STRING:
            raise _Limit("join: the result would be too long.", "join：结果将会过长。")
        parts.append(p)
    return Markup(str(d).join(parts)) if html else str(d).join(parts)


def _f_indent(value, width=4, first=False, blank=False):
    w = int(width) if not isinstance(width, str) else len(width)
    if w > 40:
        raise _Limit("indent: the width is too large (max 40).", "indent：缩进宽度过大（最大 40）。")
    return jinja2.filters.do_indent(str(value), w, first, blank)


_BUILTIN_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat",
    "first", "float", "forceescape", "groupby", "int", "items", "last", "length", "list", "lower",
    "map", "max", "min", "reject", "rejectattr", "reverse", "round", "safe", "select", "selectattr",
    "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
    "urlencode", "wordcount", "wordwrap", "batch",
)

#: what templates may use: jinja2 built-ins above plus ours
FILTER_NAMES = tuple(sorted(_BUILTIN_FILTERS + ("mask_phone", "mask_name", "date", "money", "replace",
                                                 "join", "indent")))

# ---------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------

_STR_METHODS = frozenset({"upper", "lower", "strip", "lstrip", "rstrip", "startswith", "endswith",
                          "title", "capitalize", "isdigit", "count", "find", "split"})
_DICT_METHODS = frozenset({"items", "keys", "values", "get"})
_DATE_ATTRS = frozenset({"year", "month", "day", "hour", "minute", "second", "isoformat",
                         "weekday", "isoweekday"})
_LOOP_ATTRS = frozenset({"index", "index0", "revindex", "revindex0", "first", "last", "length",
                         "depth", "depth0", "previtem", "nextitem", "cycle", "changed"})


def _deny(attr):
    raise SecurityError(f"access to {attr!r} is not allowed in templates")


def _finalize(value):
    """Lazy filter results (map, select...) print as their items, never as
    ``<generator object at 0x...>`` (an object type and a memory address in a message)."""
    import types

    if isinstance(value, (types.GeneratorType, map, filter, zip, reversed)):
        return list(value)[:10000]
    if callable(value) or isinstance(value, type):
        return ""  # a method named without calling it prints nothing, never "<built-in method ...>"
    return value


def _finalize_escaped(value):
    """Values printed by ``{{ }}`` in a template rendered with an ``escape`` function (a
    markdown dialect): escaped unless marked ``|safe``. Template text is never finalized,
    and constants are finalized at compile time with no escape set: what the rule author
    wrote stays markup."""
    value = _finalize(value)
    b = _BUDGET.get()
    if b is None or b.escape is None or isinstance(value, Markup):
        return value
    return b.escape(value if isinstance(value, str) else str(value))


class _Env(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def getattr(self, obj, attribute):
        if not isinstance(attribute, str) or attribute.startswith("_"):
            _deny(attribute)
        if isinstance(obj, dict):
            if attribute in obj:
                return obj[attribute]
            if attribute in _DICT_METHODS:
                return getattr(obj, attribute)
            return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, str):
            if attribute in _STR_METHODS:
                return getattr(obj, attribute)
            if attribute in ("format", "format_map"):
                _deny(attribute)
            return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, (_dt.date, _dt.datetime)):
            if attribute in _DATE_ATTRS:
                return getattr(obj, attribute)
            return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, LoopContext):
            if attribute in _LOOP_ATTRS:
                return getattr(obj, attribute)
            _deny(attribute)
        if isinstance(obj, jinja2.Undefined):
            return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, (list, tuple, int, float, Decimal, bool, type(None))):
            return self.undefined(obj=obj, name=attribute)
        _deny(attribute)

    def getitem(self, obj, argument):
        if isinstance(argument, str):
            if argument.startswith("_"):
                _deny(argument)
            if isinstance(obj, dict):
                return obj[argument] if argument in obj else self.undefined(obj=obj, name=argument)
            return self.getattr(obj, argument)
        try:
            return obj[argument]
        except (TypeError, LookupError):
            return self.undefined(obj=obj, name=argument)

    def wrap_str_format(self, value):
        return None

    def is_safe_attribute(self, obj, attr, value):
        return False          # everything goes through getattr/getitem above

    def unsafe_undefined(self, obj, attribute):
        _deny(attribute)

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            if isinstance(right, (int, float, Decimal)) and abs(right) > MAX_EXPONENT \
                    and not (isinstance(left, (int, float, Decimal)) and left in (0, 1)):
                raise _Limit("The exponent is too large.", "指数太大。")
            if isinstance(left, int) and isinstance(right, int) and right > 0 \
                    and left.bit_length() * right > 4096:
                raise _Limit("The number is too large.", "数字太大。")
            return left ** right
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    unit = len(seq) if isinstance(seq, str) else max(1, _size(seq, MAX_STRING + 1))
                    if unit * max(n, 0) > MAX_STRING:
                        raise _Limit("The text or list would be too long.", "文本或列表将会过长。")
            if isinstance(left, int) and isinstance(right, int) and \
                    left.bit_length() + right.bit_length() > 4096:
                raise _Limit("The number is too large.", "数字太大。")
            return left * right
        if operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)) \
                    and len(left) + len(right) > MAX_STRING:
                raise _Limit("The text or list would be too long.", "文本或列表将会过长。")
            return left + right
        if operator == "%":
            if isinstance(left, str):
                raise SecurityError("text formatting with % is not allowed")
            return left % right
        if operator == "//":
            return left // right
        return super().call_binop(context, operator, left, right)


def _make_env(html: bool, escaped: bool = False) -> _Env:
    env = _Env(autoescape=html, optimized=False, undefined=jinja2.ChainableUndefined,
               finalize=_finalize_escaped if escaped else _finalize,
               trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.globals.clear()
    env.globals.update({"range": _safe_range, "_zs_iter": _zs_iter, "_zs_guard": _zs_guard})
    builtin = jinja2.filters.FILTERS
    env.filters = {name: builtin[name] for name in _BUILTIN_FILTERS}
    env.filters.update({"mask_phone": _f_mask_phone, "mask_name": _f_mask_name, "date": _f_date,
                        "money": _f_money, "replace": _f_replace, "join": _f_join, "indent": _f_indent})
    return env


#: mode -> environment: False plain text, True HTML (autoescape), "escape" another markup whose
#: escape function render_template gets (markdown of a robot message)
_ENVS = {False: _make_env(False), True: _make_env(True), "escape": _make_env(False, escaped=True)}


def _mode(html):
    return "escape" if callable(html) or html == "escape" else bool(html)

#: Jinja's default globals, removed here; naming them is refused at save time.
_REMOVED_GLOBALS = frozenset({"cycler", "joiner", "namespace", "lipsum", "dict", "self"})

_NOT_ALLOWED_NODES = {
    nodes.Macro: ("macros", "宏（macro）"),
    nodes.CallBlock: ("call blocks", "call 块"),
    nodes.Include: ("include", "include"),
    nodes.Import: ("import", "import"),
    nodes.FromImport: ("import", "import"),
    nodes.Extends: ("extends", "extends"),
    nodes.Block: ("blocks", "block 块"),
    nodes.AssignBlock: ("block set ({% set x %}...{% endset %})", "块赋值（{% set x %}...{% endset %}）"),
}


def _check_tree(tree, errors: list):
    for node in tree.find_all(nodes.Node):
        kind = type(node)
        if kind in _NOT_ALLOWED_NODES:
            en, zh = _NOT_ALLOWED_NODES[kind]
            errors.append(TemplateError("not_allowed", f"Templates cannot use {en}.", f"模板中不能使用{zh}。",
                                        node.lineno))
        elif kind is nodes.Name and (node.name.startswith("_") or node.name in _REMOVED_GLOBALS):
            errors.append(TemplateError("not_allowed", f"The name '{node.name}' is not allowed.",
                                        f"不允许使用名称“{node.name}”。", node.lineno))
        elif kind is nodes.Getattr and node.attr.startswith("_"):
            errors.append(TemplateError("not_allowed", f"'.{node.attr}' is not allowed (names starting with '_').",
                                        f"不允许使用“.{node.attr}”（以“_”开头的名称）。", node.lineno))
        elif kind is nodes.Getitem and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) \
                and node.arg.value.startswith("_"):
            errors.append(TemplateError("not_allowed", f"'[{node.arg.value!r}]' is not allowed (names starting with '_').",
                                        f"不允许使用“[{node.arg.value!r}]”（以“_”开头的名称）。", node.lineno))
        elif kind is nodes.For and node.recursive:
            errors.append(TemplateError("not_allowed", "Recursive loops are not allowed.", "不允许使用递归循环。",
                                        node.lineno))
        elif kind is nodes.Filter and node.name not in FILTER_NAMES:
            errors.append(TemplateError("unknown_filter", f"Unknown filter '{node.name}'. Available: {', '.join(FILTER_NAMES)}.",
                                        f"没有名为“{node.name}”的过滤器。可用的有：{', '.join(FILTER_NAMES)}。", node.lineno))


def _guard_tree(tree, env):
    def call(name, arg, lineno):
        c = nodes.Call(nodes.Name(name, "load"), [arg], [], None, None)
        c.set_lineno(lineno)
        c.set_environment(env)
        return c
    for node in list(tree.find_all(nodes.For)):
        node.iter = call("_zs_iter", node.iter, node.lineno)
    for node in list(tree.find_all(nodes.Assign)):
        node.node = call("_zs_guard", node.node, node.lineno)
    for node in list(tree.find_all(nodes.With)):
        node.values = [call("_zs_guard", v, node.lineno) for v in node.values]
    return tree


def _syntax_error(e: TemplateSyntaxError) -> TemplateError:
    return TemplateError("syntax", f"The template cannot be read: {e.message}.",
                         f"模板语法错误：{e.message}。", e.lineno)


def _compile(source: str, html: bool):
    """-> (template or None, errors)."""
    env = _ENVS[_mode(html)]
    errors: list[TemplateError] = []
    if not isinstance(source, str):
        return None, [TemplateError("syntax", "The template must be text.", "模板必须是文本。")]
    if len(source) > MAX_TEMPLATE_LENGTH:
        return None, [TemplateError("too_long", f"The template is too long (limit {MAX_TEMPLATE_LENGTH:,} characters).",
                                    f"模板太长（上限 {MAX_TEMPLATE_LENGTH:,} 个字符）。", 1)]
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as e:
        return None, [_syntax_error(e)]
    except (RecursionError, MemoryError):
        return None, [TemplateError("limit", "The template is nested too deeply.", "模板嵌套太深。", 1)]
    _check_tree(tree, errors)
    if errors:
        return None, errors
    try:
        template = env.from_string(_guard_tree(tree, env))
    except TemplateSyntaxError as e:
        return None, [_syntax_error(e)]
    except (RecursionError, MemoryError):
        return None, [TemplateError("limit", "The template is nested too deeply.", "模板嵌套太深。", 1)]
    except Exception as e:  # pragma: no cover - defensive
        return None, [TemplateError("syntax", f"The template cannot be compiled ({type(e).__name__}).",
                                    "模板无法编译。", 1)]
    return template, []


class _Cache:
    def __init__(self, maxsize=1024):
        self.maxsize = maxsize
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, source, html):
        html = _mode(html)
        key = (source, html)
        with self.lock:
            hit = self.data.get(key)
            if hit is not None:
                self.data.move_to_end(key)
                return hit
        hit = _compile(source, html)
        with self.lock:
            self.data[key] = hit
            while len(self.data) > self.maxsize:
                self.data.popitem(last=False)
        return hit


_CACHE = _Cache()


def clear_cache():
    with _CACHE.lock:
        _CACHE.data.clear()


def check_template(source: str, *, html: bool = False) -> list[TemplateError]:
    """Every problem found without rendering (syntax, not-allowed tags/names, unknown filters)."""
    return list(_CACHE.get(source, html)[1])


def _line_of(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            # jinja maps generated lines back to template lines via debug info
            line = tb.tb_lineno
        tb = tb.tb_next
    return None if line is None else line


def render_template(source: str, context: Mapping[str, Any] | None = None, *, html: bool = False,
                    tz: str = "Asia/Shanghai", max_output: int = MAX_OUTPUT,
                    timeout: float = DEFAULT_TIMEOUT) -> str:
    """Render a user template with plain data; raises TemplateError on any problem.

    ``html``: False (plain text), True (HTML: printed values are HTML-escaped), or a
    function str -> str that escapes each value printed by ``{{ }}`` for another markup
    (e.g. a robot's markdown); values marked ``|safe`` and the template's own text are
    left as they are."""
    template, errors = _CACHE.get(source, html)
    if template is None:
        e = errors[0]
        raise TemplateError(e.code, e.message_en, e.message_zh, e.line)
    budget = _Budget(timeout, tz, html if callable(html) else None)
    token = _BUDGET.set(budget)
    out: list[str] = []
    total = 0
    try:
        for chunk in template.generate(dict(context or {})):
            total += len(chunk)
            if total > max_output:
                raise _Limit(f"The message is too long (over {max_output:,} characters).",
                             f"消息内容过长（超过 {max_output:,} 个字符）。")
            out.append(chunk)
            budget.check_time()
    except _Limit as e:
        raise TemplateError("limit", e.en, e.zh) from None
    except SecurityError as e:
        raise TemplateError("not_allowed", f"Not allowed in templates: {e}.", f"模板中不允许此操作：{e}。") from None
    except UndefinedError as e:
        raise TemplateError("render_error", f"The template uses something that does not exist: {e}.",
                            f"模板引用了不存在的内容：{e}。") from None
    except RecursionError:
        raise TemplateError("limit", "The template is nested too deeply.", "模板嵌套太深。") from None
    except MemoryError:
        raise TemplateError("limit", "The template needs too much memory.", "模板需要的内存过多。") from None
    except Exception as e:
        raise TemplateError("render_error", f"The template could not be rendered ({type(e).__name__}: {e}).",
                            f"模板渲染出错（{type(e).__name__}）。") from None
    finally:
        _BUDGET.reset(token)
    return "".join(out)
