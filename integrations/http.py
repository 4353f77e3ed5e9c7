"""A guarded HTTP client for requests the server makes on an organization's behalf (scheduled
pulls, outbound webhooks): the URL is someone else's input, so the request must not reach
inside our own network (SSRF).

- http and https only, no user name or password in the URL, no proxy;
- the host is resolved once, and every address it resolves to is checked: loopback, private,
  link-local, reserved, shared and multicast addresses are refused unless the organization
  allows private addresses (multicast and unspecified addresses never);
- the connection goes to the address that was checked (no second DNS lookup, which a DNS
  rebinding attack would answer differently); TLS still checks the certificate against the
  host name;
- a connect timeout, a total deadline for the whole exchange, a response size limit, and no
  redirect followed (a 3xx answer is an error).

``request()`` returns a ``Response`` or raises ``FetchError`` with a message fit to show the
person who set up the URL.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

CONNECT_TIMEOUT = 3.0
TOTAL_TIMEOUT = 10.0
MAX_BYTES = 1_000_000
USER_AGENT = "okr-alignment/1"


class FetchError(Exception):
    """A request that was refused or failed; ``str()`` says why in plain words."""

    def __init__(self, message, *, status=None):
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes


@dataclass
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: list


def _is_refused(address, allow_private):
    if address.is_multicast or address.is_unspecified:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if allow_private:
        return False
    return not address.is_global or address.is_reserved or address.is_link_local


def check_url(url, *, allow_private=False, resolver=None):
    """The checked target of ``url``: its parts and the addresses to connect to. Raises
    FetchError when the URL is no address we call."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("Give a full http:// or https:// address.")
    if parts.username or parts.password:
        raise FetchError("Leave the user name and password out of the address.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError("The port in the address is not a number from 1 to 65535.") from None
    resolver = resolver or socket.getaddrinfo
    try:
        infos = resolver(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise FetchError(f"The host {parts.hostname} cannot be found.") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if _is_refused(address, allow_private):
            raise FetchError(f"{parts.hostname} is inside a private network ({address}). Give a "
                             "public address, or ask an org admin to allow private addresses.")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise FetchError(f"The host {parts.hostname} cannot be found.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, addresses)


class _Pinned(http.client.HTTPConnection):
    """A connection to one checked address, whatever the host name resolves to now."""

    def __init__(self, target, address, connect_timeout):
        super().__init__(target.host, target.port, timeout=connect_timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTLS(_Pinned):
    def __init__(self, target, address, connect_timeout, context):
        super().__init__(target, address, connect_timeout)
        self._context = context

    def connect(self):
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def request(method, url, *, body=None, headers=None, allow_private=False,
            connect_timeout=CONNECT_TIMEOUT, total_timeout=TOTAL_TIMEOUT, max_bytes=MAX_BYTES,
            resolver=None, ssl_context=None):
    """One HTTP exchange under the guard. Any status is returned except a redirect (3xx), which
    raises; a caller decides what a 4xx or 5xx means."""
    target = check_url(url, allow_private=allow_private, resolver=resolver)
    deadline = time.monotonic() + total_timeout
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json",
                   "Connection": "close", **(headers or {})}
    last_error = None
    for address in target.addresses:
        if target.scheme == "https":
            conn = _PinnedTLS(target, address, connect_timeout,
                              ssl_context or ssl.create_default_context())
        else:
            conn = _Pinned(target, address, connect_timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:
                last_error = exc
                continue  # the next address of the host, if any
            conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
            return _exchange(conn, method, target, body, all_headers, deadline, max_bytes)
        except TimeoutError:
            raise FetchError(f"No answer within {total_timeout:g} seconds.") from None
        except ssl.SSLError as exc:
            raise FetchError(f"The TLS connection failed: {exc.reason or exc}.") from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"The connection failed: {type(exc).__name__}.") from None
        finally:
            conn.close()
    if isinstance(last_error, TimeoutError):
        raise FetchError(f"No connection within {connect_timeout:g} seconds.")
    raise FetchError(f"Cannot connect to {target.host}: "
                     f"{getattr(last_error, 'strerror', None) or last_error}.")


def _exchange(conn, method, target, body, headers, deadline, max_bytes):
    conn.request(method, target.path, body=body, headers=headers)
    response = conn.getresponse()
    # The socket under the response (the connection lets go of it on "Connection: close"):
    # each read waits at most until the deadline.
    sock = getattr(getattr(response.fp, "raw", None), "_sock", None)
    if 300 <= response.status < 400:
        raise FetchError(f"The address answered with a redirect (HTTP {response.status}); "
                         "redirects are not followed. Give the final address.",
                         status=response.status)
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise FetchError(f"The answer is larger than {max_bytes:,} bytes.",
                         status=response.status)
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if response.isclosed():
            break
        if sock is not None:
            sock.settimeout(remaining)
        chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"The answer is larger than {max_bytes:,} bytes.",
                             status=response.status)
        chunks.append(chunk)
    return Response(response.status, {k.lower(): v for k, v in response.getheaders()},
                    b"".join(chunks))


def get_json(url, **kwargs):
    """GET a JSON document: its parsed value. Raises FetchError on anything but a 2xx answer
    with valid JSON."""
    import json

    response = request("GET", url, **kwargs)
    if not 200 <= response.status < 300:
        raise FetchError(f"The address answered HTTP {response.status}.", status=response.status)
    try:
        return json.loads(response.body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise FetchError("The answer is not valid JSON.", status=response.status) from None
