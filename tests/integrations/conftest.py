"""A local HTTP server in a thread (no outside service): each test sets what it answers per
path and reads what it received."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django_scopes import scopes_disabled

from integrations.models import IntegrationSettings


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server.received.append({"method": self.command, "path": self.path, "body": body,
                                "headers": dict(self.headers.items())})
        route = server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if callable(route):
            route = route()
        status, headers, payload = route
        if isinstance(payload, (dict, list, int, float)):
            payload = json.dumps(payload).encode()
        delay = headers.pop("X-Delay", None) if isinstance(headers, dict) else None
        if delay:
            time.sleep(float(delay))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = _answer


class LocalServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.routes, self.httpd.received = {}, []
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def routes(self):
        return self.httpd.routes

    @property
    def received(self):
        return self.httpd.received

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


def allow_private(org, allow=True):
    """The local server is on 127.0.0.1: tests that reach it need the organization's
    allowance."""
    with scopes_disabled():
        IntegrationSettings.objects.update_or_create(
            organization=org, defaults={"allow_private_addresses": allow})
