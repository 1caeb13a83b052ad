"""The base of the video uris that a finished operation hands out.

A `Host` header is the client's word, and a uri built on it is returned to every later poll of
the operation, and followed by SDKs that send their API key with the download. A forged Host
would point those downloads at another server. So unless `CINEGEN_PUBLIC_URL` says where the
server lives, a Host is used only when it names a loopback address or a host the operator
listed in `CINEGEN_ALLOWED_HOSTS`; otherwise the uri is built on the address that the
connection was accepted on, which the client cannot choose.
"""

from __future__ import annotations

from starlette.requests import Request

from cinegen.api.auth import is_loopback_host
from cinegen.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


def public_base(request: Request, settings: Settings) -> str:
    """`scheme://host[:port][root_path]`, without a trailing slash."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    if host_is_trusted(request.url.hostname or "", settings.allowed_hosts):
        return str(request.base_url).rstrip("/")
    return _bound_base(request, settings)


def host_is_trusted(host: str, allowed: str) -> bool:
    """Loopback names and addresses, and `allowed`: comma-separated names, `.example.com` for
    the domain and its subdomains, `*` for any host (the old behaviour, behind a proxy that
    checks Host itself)."""
    host = host.lower().rstrip(".")
    if is_loopback_host(host):
        return True
    for entry in (e.strip().lower().rstrip(".") for e in allowed.split(",")):
        if not entry:
            continue
        if entry == "*" or host == entry or (entry.startswith(".") and host.endswith(entry)):
            return True
        if entry.startswith(".") and host == entry[1:]:
            return True
    return False


def _bound_base(request: Request, settings: Settings) -> str:
    scheme = request.url.scheme
    server = request.scope.get("server")
    host, port = (server[0], server[1]) if server else (settings.host, settings.port)
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    root_path = request.scope.get("root_path", "").rstrip("/")
    return f"{scheme}://{netloc}{root_path}"
