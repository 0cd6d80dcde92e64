"""Is an address this machine? One parser, two questions that must not be confused.

``host_of`` reads any form an address arrives in: a URL (``http://[::1]:11434``), a Host
header or ``host:port`` (``localhost:7860``), ``[v6]:port``, a bare IPv4 or IPv6 address, a
name. Then:

- ``is_loopback``: only this machine can use it. For a bind address, a Host header, a
  request's peer: 127.0.0.0/8, ::1 (also as ::ffff:127.x.x.x), ``localhost`` and
  ``*.localhost`` (RFC 6761: they always resolve to loopback). 0.0.0.0 and :: are NOT
  loopback: a server bound there listens on every interface.
- ``is_this_machine``: connecting there reaches this machine. For an Ollama client address
  (autostart, the disk check): loopback, and also 0.0.0.0 and ::, which a client's connect
  sends to this machine.

Anything that does not parse, and every other name, is neither: a caller that must fail
closed (the shared-app rules) treats it as another machine.
"""

from __future__ import annotations

import ipaddress
from typing import Optional, Union
from urllib.parse import urlsplit

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def host_of(address: Optional[str]) -> str:
    """The host part, lower case, without brackets, port or trailing dot ("" if none).

    >>> [host_of(a) for a in ("http://[::1]:11434", "[::1]:80", "::1", "Localhost:7860",
    ...                       "10.0.0.2", "gpu-box.", "", None)]
    ['::1', '::1', '::1', 'localhost', '10.0.0.2', 'gpu-box', '', '']
    """
    text = (address or "").strip().lower()
    if "://" in text:
        try:
            text = urlsplit(text).hostname or ""
        except ValueError:  # "http://[::1" (an unclosed bracket)
            return ""
    elif text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # host:port; two or more colons are a bare IPv6 address
        text = text.partition(":")[0]
    return text.rstrip(".")


def ip_of(address: Optional[str]) -> Optional[Address]:
    """The IP address it names, or None for a name (or nothing)."""
    try:
        ip = ipaddress.ip_address(host_of(address))
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return mapped or ip


def is_loopback(address: Optional[str]) -> bool:
    """True when only this machine can use the address (a bind, a Host header, a peer).

    >>> [is_loopback(a) for a in ("127.0.0.1", "[::1]:7860", "app.localhost:80",
    ...                           "::ffff:127.0.0.1", "0.0.0.0", "::", "10.1.2.3", "", None)]
    [True, True, True, True, False, False, False, False, False]
    """
    name = host_of(address)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = ip_of(name)
    return ip is not None and ip.is_loopback


def is_this_machine(address: Optional[str]) -> bool:
    """True when a client connecting to the address reaches this machine (an Ollama host):
    loopback, or the unspecified 0.0.0.0 / ::.

    >>> [is_this_machine(a) for a in ("http://[::1]:11434", "0.0.0.0:11434", "http://[::]:1",
    ...                               "http://gpu-box:11434", "https://ollama.com")]
    [True, True, True, False, False]
    """
    ip = ip_of(address)
    return is_loopback(address) or (ip is not None and ip.is_unspecified)


def join_host_port(host: str, port: int) -> str:
    """``host:port`` as OLLAMA_HOST (and Go's net.JoinHostPort) want it: IPv6 in brackets.

    >>> join_host_port("::1", 11434), join_host_port("127.0.0.1", 11434)
    ('[::1]:11434', '127.0.0.1:11434')
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


__all__ = ["host_of", "ip_of", "is_loopback", "is_this_machine", "join_host_port"]
