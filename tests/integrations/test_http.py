"""The guarded HTTP client against a local server: answers, timeouts, bad JSON, size, redirects,
private addresses, and the connection pinned to the checked address."""

import socket

import pytest

from integrations import http


def test_it_reads_a_json_document(server):
    server.routes["/count"] = (200, {"Content-Type": "application/json"}, {"total": 42})
    assert http.get_json(server.url("/count"), allow_private=True) == {"total": 42}


def test_it_refuses_a_loopback_address_unless_allowed(server):
    server.routes["/count"] = (200, {}, {"total": 1})
    with pytest.raises(http.FetchError, match="private network"):
        http.get_json(server.url("/count"))
    assert server.received == []  # refused before connecting


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.1", "169.254.169.254", "127.0.0.1",
                                     "::1", "fd00::1", "100.64.0.1", "0.0.0.0", "224.0.0.1",
                                     "::ffff:127.0.0.1"])
def test_it_refuses_private_and_special_addresses(address):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def resolver(host, port, **kw):
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    with pytest.raises(http.FetchError, match="private network"):
        http.check_url("http://metadata.example/", resolver=resolver)


def test_multicast_is_refused_even_when_private_addresses_are_allowed():
    def resolver(host, port, **kw):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("224.0.0.1", port))]

    with pytest.raises(http.FetchError):
        http.check_url("http://group.example/", allow_private=True, resolver=resolver)


def test_one_private_address_among_public_ones_is_enough_to_refuse():
    def resolver(host, port, **kw):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    with pytest.raises(http.FetchError, match="10.1.2.3"):
        http.check_url("http://mixed.example/", resolver=resolver)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com",
                                 "http://user:pw@example.com/", "gopher://127.0.0.1/",
                                 "http://example.com:99999/"])
def test_it_refuses_what_is_no_http_address(url):
    with pytest.raises(http.FetchError):
        http.check_url(url, resolver=lambda *a, **k: [])


def test_it_connects_to_the_address_it_checked_without_a_second_lookup(server):
    """DNS rebinding: the name resolves once; the connection goes to that address, and the
    request still names the host."""
    port = server.httpd.server_address[1]
    server.routes["/v"] = (200, {}, {"v": 1})
    lookups = []

    def resolver(host, p, **kw):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]

    assert http.get_json(f"http://rebind.example:{port}/v", allow_private=True,
                         resolver=resolver) == {"v": 1}
    assert lookups == ["rebind.example"]
    assert server.received[0]["headers"]["Host"] == f"rebind.example:{port}"


def test_it_gives_up_on_a_slow_answer(server):
    server.routes["/slow"] = lambda: (200, {"X-Delay": "2"}, {"total": 1})
    with pytest.raises(http.FetchError, match="No answer within 0.5 seconds"):
        http.get_json(server.url("/slow"), allow_private=True, total_timeout=0.5)


def test_it_refuses_an_answer_that_is_not_json(server):
    server.routes["/html"] = (200, {"Content-Type": "text/html"}, b"<html>Sign in</html>")
    with pytest.raises(http.FetchError, match="not valid JSON"):
        http.get_json(server.url("/html"), allow_private=True)


def test_it_refuses_an_oversized_answer_by_its_length(server):
    server.routes["/big"] = (200, {}, b"1" * 5000)
    with pytest.raises(http.FetchError, match="larger than 1,000 bytes"):
        http.get_json(server.url("/big"), allow_private=True, max_bytes=1000)


def test_it_stops_reading_an_oversized_answer_with_no_length(server):
    server.routes["/stream"] = (200, {"Content-Length": "", "Connection": "close"},
                                b"[" + b"1," * 4000 + b"1]")
    with pytest.raises(http.FetchError, match="larger than"):
        http.get_json(server.url("/stream"), allow_private=True, max_bytes=1000)


def test_it_does_not_follow_a_redirect(server):
    server.routes["/moved"] = (302, {"Location": server.url("/count")}, b"")
    server.routes["/count"] = (200, {}, {"total": 1})
    with pytest.raises(http.FetchError, match="redirect"):
        http.get_json(server.url("/moved"), allow_private=True)
    assert [r["path"] for r in server.received] == ["/moved"]


def test_an_error_status_is_an_error(server):
    server.routes["/err"] = (500, {}, b"oops")
    with pytest.raises(http.FetchError, match="HTTP 500") as caught:
        http.get_json(server.url("/err"), allow_private=True)
    assert caught.value.status == 500


def test_a_closed_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(http.FetchError, match="Cannot connect"):
        http.get_json(f"http://127.0.0.1:{port}/", allow_private=True)
