"""The platform API client keeps no cookies between calls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bot.http import platform_http


class _CookieServer(BaseHTTPRequestHandler):
    """`/set` sets a cookie; any other path answers with the Cookie header it received."""

    def do_GET(self) -> None:
        body = b"" if self.path == "/set" else (self.headers.get("Cookie") or "").encode()
        self.send_response(200)
        if self.path == "/set":
            self.send_header("Set-Cookie", "tenant=a; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CookieServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _cookie_sent_after_set(client: httpx.Client, base: str) -> str:
    client.get(f"{base}/set")
    return client.get(f"{base}/echo").text


def test_a_cookie_one_answer_sets_is_not_sent_with_the_next_call(server_url: str) -> None:
    with httpx.Client(timeout=5) as plain:
        # The control: httpx's own client would replay it.
        assert _cookie_sent_after_set(plain, server_url) == "tenant=a"
    with platform_http(timeout_s=5) as client:
        assert _cookie_sent_after_set(client, server_url) == ""
        assert not client.cookies
