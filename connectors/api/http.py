"""A small HTTP client on the standard library (urllib.request).

Why not ``requests``/``httpx``: connectors need one request at a time with a timeout and
an error mapping, nothing more; the standard library keeps the dependency list short and
plugins free to choose. Every request has a timeout. Errors are mapped to the error
contract: connection problems, timeouts, 5xx and 429 → :class:`RetryableError`
(``retry_after`` from the ``Retry-After`` header), other 4xx → :class:`PermanentError`.
"""
from __future__ import annotations

import email.utils
import http.client
import json as _json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import PayloadError, PermanentError, RetryableError

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None  # surface 3xx to the caller: signed requests must not be replayed elsewhere


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return _json.loads(self.body.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"response from {_safe_url(self.url)} (HTTP {self.status}) is not valid JSON: "
                               f"{exc}; starts with {self.body[:60]!r}", code="invalid_json") from None


def _safe_url(url: str) -> str:
    """URL without query string (it may carry tokens) for messages and logs."""
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, p.path, "", ""))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, dt.timestamp() - (now if now is not None else time.time()))


class HttpClient:
    """``HttpClient(timeout=15).request("POST", url, json={...})``.

    ``raise_for_status`` (default True) maps HTTP errors to the error contract; with it
    off, any status is returned as a response (connection errors still raise).
    Environment proxies are honoured except for loopback addresses.
    """

    def __init__(self, timeout: float = 15.0, *, user_agent: str = "Zhongshu-Connector/1.0",
                 ssl_context: ssl.SSLContext | None = None, use_env_proxies: bool = True):
        self.timeout = timeout
        self.user_agent = user_agent
        self.ssl_context = ssl_context
        self.use_env_proxies = use_env_proxies

    def _opener(self, url: str):
        host = urllib.parse.urlsplit(url).hostname or ""
        proxies = urllib.request.getproxies() if self.use_env_proxies and host not in _LOOPBACK else {}
        handlers = [urllib.request.ProxyHandler(proxies), _NoRedirect()]
        if self.ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self.ssl_context))
        return urllib.request.build_opener(*handlers)

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None, json: Any = None,
                data: bytes | str | Mapping[str, Any] | None = None, timeout: float | None = None,
                raise_for_status: bool = True) -> HttpResponse:
        method = method.upper()
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise PermanentError(f"unsupported URL scheme in {_safe_url(url)!r}", code="bad_url")
        if params:
            sep = "&" if urllib.parse.urlsplit(url).query else "?"
            url = url + sep + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        hdrs = {"User-Agent": self.user_agent, "Accept": "application/json"}
        body: bytes | None = None
        if json is not None:
            body = _json.dumps(json, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            hdrs["Content-Type"] = "application/json; charset=utf-8"
        elif isinstance(data, Mapping):
            body = urllib.parse.urlencode(data).encode("ascii")
            hdrs["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        elif isinstance(data, str):
            body = data.encode("utf-8")
        elif data is not None:
            body = bytes(data)
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=body, headers=hdrs, method=method)
        t = timeout if timeout is not None else self.timeout
        safe = _safe_url(url)
        try:
            with self._opener(url).open(req, timeout=t) as resp:
                raw = resp.read()
                result = HttpResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw, url)
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read()
            except Exception:
                raw = b""
            result = HttpResponse(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, raw, url)
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise RetryableError(f"{method} {safe} timed out after {t}s", code="timeout") from None
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise PermanentError(f"{method} {safe}: TLS certificate rejected: {reason}",
                                     code="tls") from None
            raise RetryableError(f"{method} {safe} failed: {reason}", code="network") from None
        except (TimeoutError, socket.timeout):
            raise RetryableError(f"{method} {safe} timed out after {t}s", code="timeout") from None
        except (OSError, http.client.HTTPException) as exc:
            raise RetryableError(f"{method} {safe} failed: {type(exc).__name__}: {exc}", code="network") from None
        if raise_for_status:
            check_status(result, method)
        return result


def check_status(resp: HttpResponse, method: str = "") -> HttpResponse:
    """Raise the contract's error for a non-2xx response."""
    s = resp.status
    if 200 <= s < 300:
        return resp
    where = f"{method} {_safe_url(resp.url)}".strip()
    detail = resp.body[:300].decode("utf-8", errors="replace")
    if s == 429 or s == 408 or s >= 500:
        raise RetryableError(f"{where} → HTTP {s}: {detail}", code=f"http_{s}",
                             retry_after=parse_retry_after(resp.header("retry-after")),
                             details={"status": s})
    raise PermanentError(f"{where} → HTTP {s}: {detail}", code=f"http_{s}", details={"status": s})
