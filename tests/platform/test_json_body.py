"""Request bodies are read with orjson where it gives what the standard library gives; a
user's numbers and texts must come out exactly as ``json.loads`` reads them, and bad bodies
fail with the standard library's message."""
from __future__ import annotations

import json

import pytest

from zhongshu.platform.api.json_body import loads

SAME = [
    b'{"records": [{"n": 1, "amount": 12.5, "name": "\\u4e2d\\u6587", "ok": true, "x": null}]}',
    b'123456789012345678901234567890',  # beyond 64 bits: orjson would make it a float
    b'{"id": 9223372036854775807, "neg": -9223372036854775809, "u": 18446744073709551615}',
    b'[0.1000000000000000055511151231257827, 3.141592653589793238462643, 1234567890.123456789]',
    b'[1e400, -1e400, 5e-324, -0, -0.0, 1E5, 2.675]',
    b'[NaN, Infinity, -Infinity]',
    b'{"a": 1, "a": 2}',
    b'"\\ud800"',
    b'\xef\xbb\xbf{"bom": 1}',
    '{"utf16": "中"}'.encode("utf-16"),
    b'{"surrogate": "\xed\xa0\x80"}',
    b'["\xe4\xb8\xad", "SF123456789012", "110101199003071234"]',
]
BAD = [b"{", b'{"a": 1,}', b"[1, 2] x", b"[01]", b"\xff\xfe\xfa", b'["\t"]']


@pytest.mark.parametrize("body", SAME)
def test_same_values_as_the_standard_library(body):
    assert repr(loads(body)) == repr(json.loads(body))


@pytest.mark.parametrize("body", BAD)
def test_same_errors_as_the_standard_library(body):
    with pytest.raises((ValueError, UnicodeDecodeError)) as ours:
        loads(body)
    with pytest.raises((ValueError, UnicodeDecodeError)) as std:
        json.loads(body)
    assert type(ours.value) is type(std.value) and str(ours.value) == str(std.value)
