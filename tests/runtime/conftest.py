"""Helpers for rule tests (the clock fixture is in tests/conftest.py)."""


def rule(api, definition, status=201):
    return api.ok(api.post("/rules", json=definition), status)["rule"]
