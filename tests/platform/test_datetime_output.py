"""Datetimes are shown in the tenant's timezone; the fast path (a zone's fixed-offset tail,
fields/time.py datetime_reader) gives exactly what astimezone + isoformat gives."""
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from zhongshu.platform.fields.time import datetime_reader

ZONES = ["Asia/Shanghai", "UTC", "Asia/Kolkata", "Europe/Berlin", "America/New_York", "Africa/Casablanca",
         "Australia/Lord_Howe", "America/Sao_Paulo", "Europe/Moscow", "Pacific/Apia", "Asia/Pyongyang"]


def _reference(v: datetime, tz) -> str:
    return v.replace(tzinfo=timezone.utc).astimezone(tz).isoformat()


@pytest.mark.parametrize("key", ZONES)
def test_every_instant_reads_as_astimezone_would_show_it(key):
    tz = ZoneInfo(key)
    read = datetime_reader(tz)
    rng = random.Random(key)
    for _ in range(20000):
        v = datetime(1900, 1, 1) + timedelta(seconds=rng.randrange(0, 200 * 365 * 86400))
        v = v.replace(microsecond=rng.choice([0, rng.randrange(1, 10**6)]))
        assert read(v) == _reference(v, tz), v


def test_around_a_zone_change_and_text_from_sqlite():
    sh = datetime_reader(ZoneInfo("Asia/Shanghai"))  # last daylight saving time: 1991
    for v in [datetime(1991, 9, 14, 16, 59, 59), datetime(1991, 9, 14, 17, 0), datetime(1991, 4, 14, 0, 0), datetime(2059, 12, 31, 23, 59, 59, 999999),
              datetime(2060, 1, 1), datetime(2999, 12, 31, 20)]:
        assert sh(v) == _reference(v, ZoneInfo("Asia/Shanghai"))
    assert sh("2026-11-21 10:00:00.250000") == "2026-11-21T18:00:00.250000+08:00"
    assert sh(datetime(2026, 11, 21, 10)) == "2026-11-21T18:00:00+08:00"
    assert sh(None) is None
    assert datetime_reader(timezone(timedelta(hours=-3)))(datetime(2026, 1, 1)) == "2025-12-31T21:00:00-03:00"
