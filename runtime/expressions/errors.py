"""ExpressionError: the one exception type the expression language raises.

Every problem -- a syntax error, an unknown field, a sandbox violation, a limit, a runtime
type problem -- surfaces as an :class:`ExpressionError` carrying

* ``code``      a stable machine code (``"unknown_field"``, ``"syntax"``, ``"limit"`` ...),
* ``message``   plain words for a business user in the default locale (zh-CN),
  ``message_en`` / ``message_zh`` / ``message_for(locale)`` for the other,
* ``position``  ``(line, col)``: 1-based line, 0-based *character* column into the source
  (``None`` for problems that have no place, e.g. a runtime type problem),
* ``end_position`` the end of the offending span when known (for editor underlines),
* ``suggestion`` a replacement the editor may offer (e.g. the nearest field name).
"""
from __future__ import annotations

DEFAULT_LOCALE = "zh-CN"

#: Stable error codes, documented in docs/expressions.md.
CODES = frozenset({
    "syntax",            # the text cannot be parsed
    "too_long",          # source longer than the limit
    "limit",             # a size / depth / time / step limit was hit
    "unknown_field",     # a name that is neither a field nor a constant
    "unknown_function",  # a call to something not in the function library
    "unknown_option",    # a single-select compared with a value it does not offer
    "arg_count",         # wrong number of arguments
    "arg_type",          # an argument of the wrong shape (e.g. a sub-expression not in quotes)
    "type_mismatch",     # an operator or function applied to values it cannot combine
    "not_allowed",       # a sandbox rule: dunders, lambdas, comprehensions, methods, imports...
    "eval_error",        # any other problem while evaluating
})


class ExpressionError(Exception):
    """A problem with an expression, with a bilingual message and a position."""

    def __init__(self, code: str, message_en: str, message_zh: str | None = None, *,
                 position: tuple[int, int] | None = None,
                 end_position: tuple[int, int] | None = None,
                 suggestion: str | None = None):
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh or message_en
        self.position = position
        self.end_position = end_position
        self.suggestion = suggestion
        super().__init__(self.__str__())

    # -- presentation -------------------------------------------------------------------
    @property
    def message(self) -> str:
        return self.message_for(DEFAULT_LOCALE)

    @property
    def line(self) -> int | None:
        return self.position[0] if self.position else None

    @property
    def col(self) -> int | None:
        return self.position[1] if self.position else None

    def message_for(self, locale: str | None) -> str:
        """The message in ``locale`` ("zh-CN", "zh", "en", "en-US"...); zh-CN by default."""
        if locale and locale.lower().startswith("en"):
            return self.message_en
        return self.message_zh

    def to_dict(self, locale: str | None = None) -> dict:
        """A JSON-ready dict for API responses and the formula editor."""
        d = {"code": self.code, "message": self.message_for(locale),
             "line": None, "col": None, "end_line": None, "end_col": None}
        if self.position:
            d["line"], d["col"] = self.position
        if self.end_position:
            d["end_line"], d["end_col"] = self.end_position
        if self.suggestion is not None:
            d["suggestion"] = self.suggestion
        return d

    def __str__(self) -> str:
        where = f" (line {self.position[0]}, col {self.position[1]})" if self.position else ""
        return f"{self.message_en}{where}"

    def __repr__(self) -> str:
        return f"ExpressionError({self.code!r}, {self.message_en!r}, position={self.position!r})"

    def with_position(self, position, end_position=None) -> "ExpressionError":
        if self.position is None and position is not None:
            self.position = position
            self.end_position = end_position
            self.args = (self.__str__(),)
        return self


def limit_error(en: str, zh: str) -> ExpressionError:
    return ExpressionError("limit", en, zh)


def type_error(en: str, zh: str) -> ExpressionError:
    return ExpressionError("type_mismatch", en, zh)
