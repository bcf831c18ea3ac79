"""Time field types: date, datetime (stored in UTC, shown in the tenant timezone),
created_time and modified_time (the record's own system columns)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

from sqlalchemy import Date, DateTime

from .base import EMPTY_OPS, Ctx, FieldSpec, FieldType, FieldValueError, FilterError
from .registry import register

TIME_OPS = ("=", "!=", "<", "<=", ">", ">=", "before", "after", "between", "older_than", "within_last", "today", *EMPTY_OPS)
UNITS = {"minute": 60, "minutes": 60, "m": 60, "hour": 3600, "hours": 3600, "h": 3600,
         "day": 86400, "days": 86400, "d": 86400, "week": 604800, "weeks": 604800, "w": 604800,
         "分钟": 60, "小时": 3600, "天": 86400, "周": 604800}


def parse_duration(value) -> timedelta:
    """'30 minutes', '2h', '7 天', {"amount": 30, "unit": "minutes"} -> timedelta."""
    if isinstance(value, dict):
        amount, unit = value.get("amount"), str(value.get("unit", "minutes"))
    elif isinstance(value, str):
        m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([a-z\u4e00-\u9fff]+)\s*$", value.lower())
        if not m:
            raise FilterError(f"{value!r} is not a duration such as '30 minutes'", f"{value!r} 不是时长,例如 '30 分钟'")
        amount, unit = m.group(1), m.group(2)
    else:
        raise FilterError("a duration such as '30 minutes' is needed", "需要时长,例如 '30 分钟'")
    if unit not in UNITS:
        raise FilterError(f"unknown time unit {unit!r}; use minutes, hours, days or weeks", f"不认识的时间单位 {unit!r}")
    try:
        seconds = float(amount) * UNITS[unit]
    except (TypeError, ValueError):
        raise FilterError("the duration needs a number", "时长需要数字") from None
    if not (0 <= seconds <= 3650 * 86400):
        raise FilterError("the duration is out of range", "时长超出范围")
    return timedelta(seconds=seconds)


def utc_now(ctx: Ctx) -> datetime:
    return ctx.now or datetime.now(timezone.utc).replace(tzinfo=None)


def parse_datetime(value, ctx: Ctx) -> datetime:
    """Accepts ISO 8601 (with or without offset; without = tenant timezone), 'YYYY-MM-DD HH:MM',
    a date (midnight in the tenant timezone) or a Unix timestamp; returns naive UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if value > 1e11:  # milliseconds
            value = value / 1000
        try:
            return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            raise FieldValueError("timestamp out of range", "时间戳超出范围") from None
    elif isinstance(value, str):
        s = value.strip().replace("/", "-")
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise FieldValueError(f"{value!r} is not a date and time (e.g. 2026-11-21 14:30)", f"{value!r} 不是日期时间(例如 2026-11-21 14:30)") from None
    else:
        raise FieldValueError("must be a date and time", "应为日期时间")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ctx.tz)
    if not (1900 <= dt.year <= 2999):
        raise FieldValueError("year out of range (1900-2999)", "年份超出范围(1900-2999)")
    return dt.astimezone(timezone.utc).replace(tzinfo=None)


#: UTC offset texts ('+08:00') met by DateTimeType.writer -> their timedelta
_OFFSETS: dict[str, timedelta] = {}


def _offset_of(value: str) -> timedelta | None:
    """The UTC offset of an ISO text whose last 6 characters are one, remembered (there are
    a few dozen); None when the text is not an ISO date and time with an offset."""
    try:
        off = datetime.fromisoformat(value).utcoffset()
    except ValueError:
        return None
    if off is not None and len(_OFFSETS) < 512:
        _OFFSETS[value[19:]] = off
    return off


def show_datetime(value: datetime | None, ctx: Ctx) -> str | None:
    return datetime_reader(ctx.tz)(value)


#: the fast path of datetime_reader covers instants up to here (later ones take the slow path)
_TAIL_END = datetime(2060, 1, 1)
_TAIL_FLOOR = datetime(1970, 1, 1)
_WEEK = timedelta(days=7)


def _offset_at(tz, utc_naive: datetime) -> timedelta:
    return utc_naive.replace(tzinfo=timezone.utc).astimezone(tz).utcoffset()


def _fixed_tail(tz) -> tuple[datetime, timedelta, str] | None:
    """(start, offset, suffix) when ``tz`` keeps one UTC offset from ``start`` (naive UTC) to
    _TAIL_END -- Asia/Shanghai since 1991, UTC always; a zone with daylight saving time has
    a tail of under a year. Found by walking back from _TAIL_END a week at a time (no zone
    of the tz database changes offset and back within one week), then bisecting to the
    second; costs a few milliseconds once per zone and process."""
    final = _offset_at(tz, _TAIL_END)
    if final is None:
        return None
    t = _TAIL_END
    while t > _TAIL_FLOOR and _offset_at(tz, t - _WEEK) == final:
        t -= _WEEK
    if t > _TAIL_FLOOR:  # the offset differs at t - 1 week: find the first second of the tail
        lo, hi = t - _WEEK, t  # offset(lo) != final, offset(hi) == final
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            mid = mid.replace(microsecond=0) if mid.microsecond else mid
            if mid <= lo:
                break
            if _offset_at(tz, mid) == final:
                hi = mid
            else:
                lo = mid
        t = hi
    suffix = datetime(2000, 1, 1, tzinfo=timezone(final)).isoformat()[19:]  # "+08:00"
    return t, final, suffix


@lru_cache(maxsize=256)
def datetime_reader(tz):
    """naive UTC datetime (or SQLite's text of one) -> ISO 8601 in ``tz``, e.g.
    '2026-11-21T18:00:00+08:00'. Within the zone's fixed-offset tail (_fixed_tail) the
    offset is added and its text appended (0.4 µs instead of 1.8 µs for astimezone +
    isoformat; a page of 50 orders shows 150 of them); the same text either way."""
    utc = timezone.utc

    def slow(value):
        if value is None:
            return None
        if isinstance(value, str):  # SQLite returns text for expressions such as max()
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=utc).astimezone(tz).isoformat()

    try:
        tail = _fixed_tail(tz)
    except (OverflowError, ValueError):
        tail = None
    if tail is None:
        return slow
    start, off, suffix, end = *tail, _TAIL_END

    def read(value):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None and start <= value < end:
            return (value + off).isoformat() + suffix
        return value.replace(tzinfo=utc).astimezone(tz).isoformat()
    return read


class TimeFilters:
    def relative_filter(self, col, op, value, spec, ctx):
        now = utc_now(ctx)
        if op == "older_than":
            return col < self.to_column_value(now - parse_duration(value), ctx)
        if op == "within_last":
            return col >= self.to_column_value(now - parse_duration(value), ctx)
        if op == "today":
            local = now.replace(tzinfo=timezone.utc).astimezone(ctx.tz)
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            lo = start.astimezone(timezone.utc).replace(tzinfo=None)
            return col.between(self.to_column_value(lo, ctx), self.to_column_value(lo + timedelta(days=1) - timedelta(microseconds=1), ctx))
        return None


@register
class DateType(TimeFilters, FieldType):
    name = "date"
    label = {"zh-CN": "日期", "en": "Date"}
    operators = TIME_OPS

    def column_type(self, spec):
        return Date()

    def to_storage(self, value, spec, ctx):
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            s = value.strip().replace("/", "-").replace(".", "-")
            try:
                return date.fromisoformat(s[:10]) if len(s) >= 10 else date.fromisoformat(s)
            except ValueError:
                m = re.match(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$", value.strip())
                if m:
                    try:
                        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                    except ValueError:
                        pass
                raise FieldValueError(f"{value!r} is not a date (e.g. 2026-11-21)", f"{value!r} 不是日期(例如 2026-11-21)") from None
        raise FieldValueError("must be a date", "应为日期")

    def from_storage(self, value, spec, ctx):
        if value is None:
            return None
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    def to_column_value(self, utc_dt, ctx):
        return utc_dt.replace(tzinfo=timezone.utc).astimezone(ctx.tz).date()

    def filter(self, col, op, value, spec, ctx):
        rel = self.relative_filter(col, op, value, spec, ctx) if op in ("older_than", "within_last", "today") else None
        return rel if rel is not None else super().filter(col, op, value, spec, ctx)


@register
class DateTimeType(TimeFilters, FieldType):
    name = "datetime"
    label = {"zh-CN": "日期时间", "en": "Date and time"}
    operators = TIME_OPS

    def column_type(self, spec):
        return DateTime()

    def to_storage(self, value, spec, ctx):
        if value is None or value == "":
            return None
        return parse_datetime(value, ctx)

    def from_storage(self, value, spec, ctx):
        return show_datetime(value, ctx)

    def reader(self, spec, ctx):
        return datetime_reader(ctx.tz)

    def writer(self, spec, ctx):
        """``to_storage`` for many values. ISO 8601 text with seconds and its own UTC offset
        ('2026-11-20T10:30:00+08:00', what an API client sends) is read as its first 19
        characters (naive) less the offset, whose value is kept per text ('+08:00'): a
        quarter of the time of ``parse_datetime``, the same result. Anything else (no
        offset, 'Z', a timestamp, 'YYYY/MM/DD', bad text) goes through ``parse_datetime``."""
        if type(self).to_storage is not DateTimeType.to_storage:
            return super().writer(spec, ctx)
        fromiso, offsets = datetime.fromisoformat, _OFFSETS

        def write(value):
            if type(value) is str and len(value) == 25 and (value[19] == "+" or value[19] == "-"):
                off = offsets.get(value[19:])
                if off is None:
                    off = _offset_of(value)
                if off is not None:
                    try:
                        local = fromiso(value[:19])
                    except ValueError:
                        local = None
                    if local is not None and 1900 <= local.year <= 2999:
                        return local - off
            if value is None or value == "":
                return None
            return parse_datetime(value, ctx)
        return write

    def to_column_value(self, utc_dt, ctx):
        return utc_dt

    def filter(self, col, op, value, spec, ctx):
        rel = self.relative_filter(col, op, value, spec, ctx) if op in ("older_than", "within_last", "today") else None
        return rel if rel is not None else super().filter(col, op, value, spec, ctx)


class SystemColumn:
    storage = "system"
    computed = True
    system_column = ""

    def physical_column(self, spec):
        return self.system_column

    def column_type(self, spec):
        return None


@register
class CreatedTime(SystemColumn, DateTimeType):
    name = "created_time"
    label = {"zh-CN": "创建时间", "en": "Created time"}
    system_column = "created_at"


@register
class ModifiedTime(SystemColumn, DateTimeType):
    name = "modified_time"
    label = {"zh-CN": "修改时间", "en": "Last modified time"}
    system_column = "updated_at"
