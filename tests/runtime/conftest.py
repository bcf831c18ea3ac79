"""Fixtures for rule tests: a shop with orders, items, products, inventory and a clock."""
from datetime import datetime, timedelta

import pytest


class Clock:
    """The platform's clock, moved by hand (naive UTC)."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


@pytest.fixture
def clock(platform):
    c = Clock(datetime(2026, 11, 21, 2, 0, 0))  # 10:00 in Asia/Shanghai
    platform.clock = c
    return c


def rule(api, definition, status=201):
    return api.ok(api.post("/rules", json=definition), status)["rule"]
