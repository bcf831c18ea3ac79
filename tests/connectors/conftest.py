"""Fixtures: real HTTP servers on 127.0.0.1 that check the protocol they emulate."""
from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class LocalServer:
    """A threaded WSGI server on 127.0.0.1:<free port> running ``handler(request) -> Response``.
    Every request is kept in ``.requests`` so tests can look at what the connector sent."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[dict] = []

        @Request.application
        def app(request: Request):
            body = request.get_data()
            self.requests.append({"method": request.method, "path": request.path,
                                  "args": request.args.to_dict(),
                                  "query": request.environ.get("QUERY_STRING", ""), "headers": dict(request.headers),
                                  "body": body})
            return self.handler(request)

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def serve():
    """``with``-free: ``srv = serve(handler)`` starts a server, stopped after the test."""
    servers = []

    def start(handler) -> LocalServer:
        s = LocalServer(handler).__enter__()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def json_response(data, status=200, headers=None):
    import json
    return Response(json.dumps(data, ensure_ascii=False), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


@pytest.fixture
def reply():
    """``reply(data, status=200, headers=None)`` → a JSON werkzeug Response."""
    return json_response
