"""The safe URL fetcher (cinegen/media/fetch.py), in-process against loopback servers.

Every refusal class is shown next to a fetch that succeeds once the guard is lifted for that
host, so a guard that refused everything (or nothing) would fail here. No test resolves a
name outside this machine: names are IP literals, `localhost`, or go to a stub resolver.
"""

from __future__ import annotations

import datetime
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinegen.media.fetch import FetchBusy, FetchError, FetchPolicy, FetchPool, fetch_image

from .support import BIG, GREEN_JPEG, RED_PNG, ImageServer

LOOPBACK_ONLY = FetchPolicy.from_allow_list(["127.0.0.1"])


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with ImageServer("127.0.0.1") as server:
        yield server


@pytest.fixture(scope="module")
def other_loopback() -> Iterator[ImageServer]:
    """A second server on 127.0.0.2: reachable, but not allow-listed."""
    with ImageServer("127.0.0.2") as server:
        yield server


def refused(url: str, policy: FetchPolicy | None = None) -> str:
    with pytest.raises(FetchError) as info:
        fetch_image(url, policy or FetchPolicy())
    return info.value.reason


def test_allow_listed_host_is_fetched_and_sniffed(images: ImageServer) -> None:
    png = fetch_image(images.url("/red.png"), LOOPBACK_ONLY)
    assert (png.data, png.mime_type) == (RED_PNG, "image/png")
    jpeg = fetch_image(images.url("/green.jpg"), LOOPBACK_ONLY)
    assert (jpeg.data, jpeg.mime_type) == (GREEN_JPEG, "image/jpeg")


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/a.png", "gopher://127.0.0.1:70/", "dict://x/"],
)
def test_only_http_and_https(url: str) -> None:
    policy = FetchPolicy.from_allow_list(["127.0.0.1", "x"])
    assert "scheme" in refused(url, policy)


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("2130706433", "loopback"),  # 127.0.0.1 as one decimal number
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback (IPv4 inside IPv6)"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("[fd00::1]", "private"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("224.0.0.1", "multicast"),
        ("[ff02::1]", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not globally routable"),
    ],
)
def test_each_address_class_is_refused(host: str, kind: str) -> None:
    reason = refused(f"http://{host}:9/image.png")
    assert reason.endswith(f"a {kind} address"), reason


def test_loopback_refused_unless_allow_listed(images: ImageServer) -> None:
    """The same reachable URL: refused by default, fetched once 127.0.0.1 is allowed."""
    before = len(images.requests)
    assert "loopback" in refused(images.url("/red.png"))
    assert len(images.requests) == before  # refused before connecting
    assert fetch_image(images.url("/red.png"), LOOPBACK_ONLY).data == RED_PNG


def test_allow_list_by_network_and_by_name(images: ImageServer) -> None:
    by_network = FetchPolicy.from_allow_list(["127.0.0.0/8"])
    assert fetch_image(images.url("/red.png"), by_network).data == RED_PNG
    by_name = FetchPolicy.from_allow_list(["localhost"])
    url = f"http://localhost:{images.port}/red.png"
    assert fetch_image(url, by_name).data == RED_PNG
    assert "loopback" in refused(images.url("/red.png"), by_name)  # 127.0.0.1 is not named


def test_redirect_into_a_non_allowed_address_is_refused(
    images: ImageServer, other_loopback: ImageServer
) -> None:
    target = other_loopback.url("/red.png")
    hop = images.url(f"/redirect?to={target}")
    before = len(other_loopback.requests)
    assert "127.0.0.2" in refused(hop, LOOPBACK_ONLY)
    assert len(other_loopback.requests) == before  # never connected to the second hop
    both = FetchPolicy.from_allow_list(["127.0.0.1", "127.0.0.2"])
    assert fetch_image(hop, both).data == RED_PNG  # the redirect itself is followed


def test_redirect_to_cloud_metadata_is_refused(images: ImageServer) -> None:
    hop = images.url("/redirect?to=http://169.254.169.254/latest/meta-data/")
    assert refused(hop, LOOPBACK_ONLY).endswith("a link-local address")


def test_redirects_are_bounded(images: ImageServer) -> None:
    before = len(images.requests)
    assert "redirects" in refused(images.url("/loop"), LOOPBACK_ONLY)
    assert len(images.requests) - before == LOOPBACK_ONLY.max_redirects + 1


def test_oversized_body_refused_by_content_length(images: ImageServer) -> None:
    assert "cap" in refused(images.url("/big"), LOOPBACK_ONLY)


def test_oversized_body_refused_while_streaming(images: ImageServer) -> None:
    reason = refused(images.url("/big-chunked"), LOOPBACK_ONLY)
    assert "cap" in reason
    small = FetchPolicy.from_allow_list(["127.0.0.1"], max_bytes=BIG * 2)
    assert len(fetch_image(images.url("/big-chunked"), small).data) >= BIG


def test_non_image_body_refused(images: ImageServer) -> None:
    assert "not a JPEG, PNG or WebP" in refused(images.url("/page.html"), LOOPBACK_ONLY)


def test_http_error_refused(images: ImageServer) -> None:
    assert "HTTP 404" in refused(images.url("/missing.png"), LOOPBACK_ONLY)


def test_slow_body_hits_the_deadline(images: ImageServer) -> None:
    policy = FetchPolicy.from_allow_list(["127.0.0.1"], timeout=1.0)
    start = time.monotonic()
    reason = refused(images.url("/slow"), policy)
    assert "longer than" in reason or "timed out" in reason, reason
    assert time.monotonic() - start < 4.0


def _in_thread(fn: object) -> tuple[threading.Thread, list[object]]:
    """Run `fn()` in a daemon thread; its result or exception lands in the list."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_drip_fed_headers_hit_the_deadline(images: ImageServer) -> None:
    """Headers arriving a byte every 0.2 s (no single read ever times out) for a minute:
    the 1 s deadline ends the fetch all the same. Before the deadline covered header reads,
    this fetch was held until the server stopped dripping."""
    policy = FetchPolicy.from_allow_list(["127.0.0.1"], timeout=1.0)
    thread, out = _in_thread(lambda: fetch_image(images.url("/drip-headers"), policy))
    thread.join(15)  # generous: the deadline is 1 s, the drip lasts 60 s
    assert not thread.is_alive(), "the fetch was still reading headers after 15 s"
    assert isinstance(out[0], FetchError), out
    assert "within 1 s" in out[0].reason, out[0].reason


def test_the_pool_refuses_at_once_when_full(images: ImageServer) -> None:
    """One worker, one waiting place: a third fetch is refused without waiting, and the
    stuck ones still end at their deadline."""
    pool = FetchPool(workers=1, queue=1)
    policy = FetchPolicy.from_allow_list(["127.0.0.1"], timeout=2.0)
    try:
        stuck = [pool.submit(images.url("/drip-headers"), policy) for _ in range(2)]
        start = time.monotonic()
        with pytest.raises(FetchBusy):
            pool.submit(images.url("/red.png"), policy)
        assert time.monotonic() - start < 1.0  # refused, not queued
        for future in stuck:
            with pytest.raises(FetchError):
                FetchPool.result(future, policy)
        # the deadline counts from submit: the one that waited for the worker ends too
        assert pool.fetch(images.url("/red.png"), policy).data == RED_PNG  # slots came back
    finally:
        pool.shutdown()


def test_connection_is_pinned_to_the_checked_address(images: ImageServer) -> None:
    """The name is resolved once per hop (by our resolver) and never again by the HTTP
    layer: `images.test` does not resolve anywhere else, yet the fetch works, with the name
    in the Host header."""
    calls: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    policy = FetchPolicy.from_allow_list(["127.0.0.1"], resolve=resolver)
    got = fetch_image(f"http://images.test:{images.port}/red.png", policy)
    assert got.data == RED_PNG
    assert calls == ["images.test"]
    assert images.requests[-1] == ("/red.png", f"images.test:{images.port}")


def test_any_disallowed_address_of_a_name_refuses_it() -> None:
    """A name answering with a public and a private address is refused (no connection)."""

    def resolver(_host: str, _port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]

    reason = refused("http://mixed.test/a.png", FetchPolicy(resolve=resolver))
    assert reason == "mixed.test resolves to 10.0.0.7, a private address"


def test_unresolvable_name_refused() -> None:
    def resolver(host: str, _port: int) -> list[str]:
        raise OSError(f"no such host {host}")

    assert "does not resolve" in refused("http://nowhere.test/a.png", FetchPolicy(resolve=resolver))


def test_control_characters_in_the_url_are_refused(images: ImageServer) -> None:
    url = images.url("/red.png") + " HTTP/1.1\r\nX-Injected: 1"
    assert "failed" in refused(url, LOOPBACK_ONLY)


def _tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for `localhost`: the server's context and a client context
    that trusts only it."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = tmp_path / "cert.pem"
    key_pem = tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_pem, key_pem)
    client = ssl.create_default_context(cafile=str(cert_pem))
    return server, client


def test_https_is_fetched_and_held_to_the_deadline(tmp_path: Path) -> None:
    """Over TLS as over plain HTTP: the certificate is checked against the URL's host name
    (the connection still goes to the checked address), and drip-fed headers or a trickled
    body end at the deadline."""
    server_context, client_context = _tls_pair(tmp_path)
    with ImageServer("127.0.0.1", tls=server_context) as images:
        policy = FetchPolicy.from_allow_list(
            ["127.0.0.1"],
            timeout=1.0,
            resolve=lambda _host, _port: ["127.0.0.1"],
            ssl_context=client_context,
        )
        url = f"https://localhost:{images.port}"
        assert fetch_image(f"{url}/red.png", policy).data == RED_PNG
        assert "failed" in refused(f"{url}/red.png", FetchPolicy.from_allow_list(["127.0.0.1"]))
        for path, words in (("/drip-headers", "within 1 s"), ("/slow", "longer than 1 s")):
            thread, out = _in_thread(lambda path=path: fetch_image(f"{url}{path}", policy))
            thread.join(15)
            assert not thread.is_alive(), path
            assert isinstance(out[0], FetchError) and words in out[0].reason, (path, out)
