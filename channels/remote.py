"""Who is on the other end of a request: the client's address, proxies seen through.

Behind nginx (``deploy/nginx.conf``) every request comes from the proxy's address, and the
client's is the last hop nginx appended to ``X-Forwarded-For``. That header is the caller's to
write, so it is read only when the request came from a configured trusted proxy
(``TRUSTED_PROXIES``), and then from the right: the first address that is not itself a trusted
proxy is the client. Limits per client (failed Alipay signatures) key on this address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(setting: str | Iterable[str] | None) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES``: addresses or networks, comma-separated ("127.0.0.1, 10.0.0.0/8")."""
    if not setting:
        return ()
    items = setting.split(",") if isinstance(setting, str) else setting
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item)
    except ValueError as error:
        raise ValueError(f"TRUSTED_PROXIES: {error}") from None


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(
    remote_addr: str | None, forwarded_for: str | None, networks: tuple[Network, ...]
) -> str:
    """The client's address: ``remote_addr`` unless that is a trusted proxy, else the last
    untrusted hop of ``X-Forwarded-For`` (a malformed hop ends the walk: it is the client)."""
    remote = remote_addr or "unknown"
    if not forwarded_for or not _trusted(_address(remote), networks):
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",")[-16:]]  # outsider input: bounded
    for hop in reversed(hops):
        address = _address(hop)
        if not _trusted(address, networks):
            return str(address) if address is not None else hop[:64]
    return hops[0][:64] if hops else remote
