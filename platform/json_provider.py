"""JSON output: decimals as numbers, dates as ISO text, non-ASCII kept readable."""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from flask.json.provider import DefaultJSONProvider


def _default(o):
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class ZhongshuJSON(DefaultJSONProvider):
    ensure_ascii = False
    sort_keys = False

    def dumps(self, obj, **kw):
        kw.setdefault("ensure_ascii", False)
        kw.setdefault("default", _default)
        return json.dumps(obj, **kw)
