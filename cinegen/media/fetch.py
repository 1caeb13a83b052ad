"""Fetch an image a client named by URL, without opening a way into the server's network.

The server fetches URLs its callers choose (the `/v1/videos` gateway format allows them), so
every hop is checked: only http and https; the host is resolved once and every address it
resolves to must be public (no loopback, private, link-local — the cloud metadata address
169.254.169.254 among them —, multicast, reserved or unspecified address, also when wrapped
in IPv6); the connection then goes to exactly that checked address (no second lookup, so no
DNS-rebinding window), with the original host name for the Host header and for TLS. Redirects
are followed by hand, a bounded number of times, each target checked the same way. The body
is streamed under a size cap, and must start like a JPEG, PNG or WebP image.

One deadline (`FetchPolicy.timeout`, from the moment the fetch is asked for) bounds the whole
fetch: name resolution, connecting, the TLS handshake, sending, the status line and headers,
the body, and every redirect hop. Each socket operation gets only what is left of it, so a
server that drip-feeds its headers a byte at a time cannot hold a fetch past it.

`FetchPool` runs fetches on a few threads of their own with a bounded wait list: a caller
that finds it full is refused at once (`FetchBusy`) instead of queueing without bound, so
slow image servers cannot take every thread of the server.

`allow` lifts the address check for named hosts, addresses or networks (tests, trusted
deployments); everything else still applies. Every refusal is a `FetchError` whose reason is
meant for the server log, not for the client.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

MAX_BYTES = 20 * 1024 * 1024
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 10.0
POOL_WORKERS = 8  # fetches running at once
POOL_QUEUE = 8  # fetches waiting for a worker; past workers + queue, FetchBusy
_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_USER_AGENT = "cinegen-image-fetch/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

_DNS_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="dns")


class FetchError(Exception):
    """The URL was refused or could not be fetched; `reason` says why (for the log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchBusy(FetchError):
    """The fetch pool is full: refused at once, nothing was fetched (try again later)."""


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    mime_type: str
    final_url: str


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may do. `allow` entries: host names, IP addresses or CIDR networks."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[Network, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = MAX_BYTES
    max_redirects: int = MAX_REDIRECTS
    resolve: Resolver | None = field(default=None, compare=False)
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)  # None: system CAs

    @classmethod
    def from_allow_list(cls, entries: Iterable[str], **kwargs: object) -> FetchPolicy:
        hosts: set[str] = set()
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(allow_hosts=frozenset(hosts), allow_networks=tuple(networks), **kwargs)  # type: ignore[arg-type]

    def allows(self, host: str, address: IPAddress) -> bool:
        if host.lower().rstrip(".") in self.allow_hosts:
            return True
        return any(address in network for network in self.allow_networks)


# --------------------------------------------------------------------------- addresses


def refusal_reason(address: IPAddress) -> str | None:
    """Why this address may not be fetched from, or None for a public unicast address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = refusal_reason(embedded)
        return f"{reason} (IPv4 inside IPv6)" if reason else None
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _remaining(deadline: float, policy: FetchPolicy) -> float:
    """Seconds left before `deadline`; FetchError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"the fetch took longer than {policy.timeout:g} s")
    return left


def _resolve(
    host: str, port: int, policy: FetchPolicy, deadline: float | None = None
) -> list[IPAddress]:
    """Every address of `host` (an IP literal is its own), before the deadline."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if deadline is None:
        deadline = time.monotonic() + policy.timeout
    resolver = policy.resolve or system_resolve
    future = _DNS_POOL.submit(resolver, host, port)
    try:
        found = future.result(timeout=_remaining(deadline, policy))
    except concurrent.futures.TimeoutError as exc:
        raise FetchError(f"resolving {host} timed out") from exc
    except OSError as exc:
        raise FetchError(f"{host} does not resolve ({exc})") from exc
    addresses: list[IPAddress] = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            continue
    if not addresses:
        raise FetchError(f"{host} resolved to no usable address")
    return addresses


def check_target(
    url: str, policy: FetchPolicy, deadline: float | None = None
) -> tuple[str, str, int, IPAddress]:
    """Scheme, host, port and the one address to connect to, or FetchError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"malformed URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"scheme {scheme or '(none)'!r} is not allowed (only http and https)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    addresses = _resolve(host, port, policy, deadline)
    for address in addresses:
        if policy.allows(host, address):
            continue
        reason = refusal_reason(address)
        if reason:
            raise FetchError(f"{host} resolves to {address}, a {reason} address")
    return scheme, host, port, addresses[0]


# --------------------------------------------------------------------------- connections


class _DeadlineTimeout(TimeoutError):
    """The fetch's deadline passed between two socket operations."""


class _DeadlineSocket:
    """A connected socket whose every operation gets only what is left of one deadline.

    A socket timeout bounds each `recv` alone; http.client reads the status line and every
    header line with many of them, so a server sending a byte now and then would never trip
    it. Here the timeout is set to the time left before each call, and a call made after the
    deadline fails at once. `makefile` and `close` keep the real socket open while a response
    still reads from it, as `socket.socket` does."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._io_refs = 0
        self._closed = False

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise _DeadlineTimeout("the fetch deadline passed")
        self._sock.settimeout(left)

    def sendall(self, data: Any) -> None:
        self._arm()
        self._sock.sendall(data)

    def recv_into(self, buffer: Any, *args: Any) -> int:
        self._arm()
        return self._sock.recv_into(buffer, *args)

    def fileno(self) -> int:
        return self._sock.fileno()

    def makefile(self, mode: str = "rb", buffering: int = -1) -> Any:
        if mode != "rb":
            raise ValueError(f"unsupported mode {mode!r}")
        self._io_refs += 1
        raw = socket.SocketIO(self, "rb")  # type: ignore[arg-type]  # duck-typed socket
        return io.BufferedReader(raw, buffering if buffering > 0 else io.DEFAULT_BUFFER_SIZE)

    def _decref_socketios(self) -> None:
        self._io_refs -= 1
        if self._closed and self._io_refs <= 0:
            self._sock.close()

    def close(self) -> None:
        self._closed = True
        if self._io_refs <= 0:
            self._sock.close()

    def force_close(self) -> None:
        self._closed = True
        self._sock.close()


class PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a fixed, already checked address, under one deadline."""

    def __init__(self, host: str, port: int, address: IPAddress, deadline: float) -> None:
        super().__init__(host, port, timeout=max(deadline - time.monotonic(), 0.01))
        self._address = str(address)
        self._deadline = deadline
        self._raw: socket.socket | None = None

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise _DeadlineTimeout("the fetch deadline passed")
        return left

    def _connect_raw(self) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), self._left())
        self._raw = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connect(self) -> None:
        self.sock = _DeadlineSocket(self._connect_raw(), self._deadline)

    def abort(self) -> None:
        """Close the connection for good, even while a response still holds it."""
        sock = self.sock
        super().close()
        if isinstance(sock, _DeadlineSocket):
            sock.force_close()
        elif self._raw is not None:
            self._raw.close()


class PinnedHTTPS(PinnedHTTP):
    """HTTPS to a fixed address, verifying the certificate against the URL's host name."""

    def __init__(
        self,
        host: str,
        port: int,
        address: IPAddress,
        deadline: float,
        context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host, port, address, deadline)
        self._context = context or ssl.create_default_context()

    def connect(self) -> None:
        raw = self._connect_raw()
        raw.settimeout(self._left())  # the handshake is one call: bounded by what is left
        tls = self._context.wrap_socket(raw, server_hostname=self.host)
        self._raw = tls
        self.sock = _DeadlineSocket(tls, self._deadline)


def request_target(url: str) -> str:
    """The path and query an HTTP request line asks for."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def host_header(scheme: str, host: str, port: int) -> str:
    """`Host` for a checked target: the port only when not the scheme's, IPv6 in brackets."""
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return name if port == (443 if scheme == "https" else 80) else f"{name}:{port}"


def pinned_connection(
    scheme: str, host: str, port: int, address: IPAddress, deadline: float, policy: FetchPolicy
) -> PinnedHTTP:
    """A connection to the address `check_target` approved, never re-resolved."""
    if scheme == "https":
        return PinnedHTTPS(host, port, address, deadline, policy.ssl_context)
    return PinnedHTTP(host, port, address, deadline)


class TargetRefused(FetchError):
    """The target may not be contacted (its address, or plain http off the allow-list):
    nothing was sent."""


@dataclass(frozen=True)
class PostAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes  # at most the `read_limit` asked for


def post_policy(allow_hosts: str, timeout: float) -> FetchPolicy:
    """The guard of a POST cinegen makes to a URL an operator or user gave (a webhook, the
    moderation hook): the image fetcher's allow list (`CINEGEN_FETCH_ALLOW_HOSTS`,
    comma-separated), `timeout`, and no redirects."""
    return FetchPolicy.from_allow_list(allow_hosts.split(","), timeout=timeout, max_redirects=0)


def post_guarded(
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: FetchPolicy,
    *,
    read_limit: int,
) -> PostAnswer:
    """POST `body` once to a target the guard approves: a public address (or an allow-listed
    host), pinned as resolved, https unless allow-listed, no redirects followed. The hooks
    the server calls out to (webhooks, the moderation hook) all go through here.
    `TargetRefused` when nothing was sent, `FetchError` when no answer came in time."""
    deadline = time.monotonic() + policy.timeout
    try:
        scheme, host, port, address = check_target(url, policy, deadline)
    except FetchError as exc:
        raise TargetRefused(exc.reason) from exc
    if scheme != "https" and not policy.allows(host, address):
        raise TargetRefused(f"{host}: plain http is allowed only for CINEGEN_FETCH_ALLOW_HOSTS")
    conn = pinned_connection(scheme, host, port, address, deadline, policy)
    try:
        conn.putrequest("POST", request_target(url), skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host_header(scheme, host, port))
        conn.putheader("Content-Length", str(len(body)))
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return PostAnswer(response.status, response.headers, response.read(read_limit))
    except (OSError, ValueError, http.client.HTTPException, ssl.SSLError) as exc:
        if time.monotonic() >= deadline:
            raise FetchError(f"{host} did not answer within {policy.timeout:g} s") from exc
        raise FetchError(f"{host} ({address}): {exc}") from exc
    finally:
        conn.abort()


def _open(url: str, policy: FetchPolicy, deadline: float) -> tuple[PinnedHTTP, Any]:
    scheme, host, port, address = check_target(url, policy, deadline)
    _remaining(deadline, policy)
    conn = pinned_connection(scheme, host, port, address, deadline, policy)
    try:
        conn.putrequest("GET", request_target(url), skip_host=True)
        conn.putheader("Host", host_header(scheme, host, port))
        conn.putheader("User-Agent", _USER_AGENT)
        conn.putheader("Accept", "image/jpeg, image/png, image/webp")
        conn.endheaders()
        return conn, conn.getresponse()
    except (OSError, ValueError, http.client.HTTPException, ssl.SSLError) as exc:
        conn.abort()
        if isinstance(exc, _DeadlineTimeout) or time.monotonic() >= deadline:
            late = f"{host} ({address}) did not answer within {policy.timeout:g} s"
            raise FetchError(late) from exc
        raise FetchError(f"connecting to {host} ({address}) failed: {exc}") from exc


def _read_capped(response: http.client.HTTPResponse, policy: FetchPolicy, deadline: float) -> bytes:
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > policy.max_bytes:
        raise FetchError(f"the body is {int(length)} bytes, over the {policy.max_bytes} cap")
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise FetchError(f"the download took longer than {policy.timeout:g} s")
            chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > policy.max_bytes:
                raise FetchError(f"the body is over the {policy.max_bytes} byte cap")
            chunks.append(chunk)
    except _DeadlineTimeout as exc:
        raise FetchError(f"the download took longer than {policy.timeout:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline:
            raise FetchError(f"the download took longer than {policy.timeout:g} s") from exc
        raise FetchError(f"reading the body failed: {exc}") from exc
    return b"".join(chunks)


def sniff_image(data: bytes) -> str | None:
    """The image type the bytes start with (JPEG, PNG, WebP), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def fetch_image(
    url: str, policy: FetchPolicy | None = None, *, deadline: float | None = None
) -> FetchedImage:
    """GET `url` under `policy`: the image bytes and their sniffed type, or FetchError.

    Everything happens before `deadline` (a `time.monotonic()` value; by default the
    policy's timeout from now)."""
    policy = policy or FetchPolicy()
    if deadline is None:
        deadline = time.monotonic() + policy.timeout
    current = url
    for _hop in range(policy.max_redirects + 1):
        conn, response = _open(current, policy, deadline)
        try:
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"redirect {response.status} without a Location")
                current = urljoin(current, location.strip())
                continue
            if response.status != 200:
                raise FetchError(f"the server answered HTTP {response.status}")
            data = _read_capped(response, policy, deadline)
        finally:
            response.close()
            conn.abort()
        mime_type = sniff_image(data)
        if mime_type is None:
            head = data[:16]
            raise FetchError(f"the body is not a JPEG, PNG or WebP image (starts with {head!r})")
        return FetchedImage(data=data, mime_type=mime_type, final_url=current)
    raise FetchError(f"more than {policy.max_redirects} redirects")


# --------------------------------------------------------------------------- the pool


class FetchPool:
    """Fetches on `workers` threads of their own, at most `queue` more waiting for one.

    `submit` refuses at once with `FetchBusy` when `workers + queue` fetches are already in
    hand, so the number of threads that slow image servers can hold — the pool's and the
    callers' waiting on it — is bounded, and a deadline starts when the fetch is asked for
    (time spent waiting for a worker counts)."""

    def __init__(self, workers: int = POOL_WORKERS, queue: int = POOL_QUEUE) -> None:
        self.workers = max(1, workers)
        self.queue = max(0, queue)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="fetch"
        )
        self._slots = threading.BoundedSemaphore(self.workers + self.queue)

    def submit(
        self, url: str, policy: FetchPolicy | None = None
    ) -> concurrent.futures.Future[FetchedImage]:
        policy = policy or FetchPolicy()
        if not self._slots.acquire(blocking=False):
            raise FetchBusy(
                f"{self.workers + self.queue} image downloads are already running or waiting"
            )
        deadline = time.monotonic() + policy.timeout
        try:
            future = self._executor.submit(fetch_image, url, policy, deadline=deadline)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _done: self._slots.release())
        return future

    @staticmethod
    def result(
        future: concurrent.futures.Future[FetchedImage], policy: FetchPolicy | None = None
    ) -> FetchedImage:
        """The fetched image, or FetchError: the fetch's own deadline ends it, the wait
        here gives up a second after that in any case."""
        policy = policy or FetchPolicy()
        try:
            return future.result(timeout=policy.timeout + 1.0)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise FetchError(f"the fetch took longer than {policy.timeout:g} s") from exc

    def fetch(self, url: str, policy: FetchPolicy | None = None) -> FetchedImage:
        return self.result(self.submit(url, policy), policy)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_POOLS: dict[tuple[int, int], FetchPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int = POOL_WORKERS, queue: int = POOL_QUEUE) -> FetchPool:
    """The process's pool of this size (created on first use, kept for the process)."""
    with _POOLS_LOCK:
        pool = _POOLS.get((workers, queue))
        if pool is None:
            pool = _POOLS[(workers, queue)] = FetchPool(workers, queue)
        return pool
