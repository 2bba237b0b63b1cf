"""HTTPS for the emulator: a server certificate, and optionally a demand for a client one."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

CLIENT_CERT_MODES = ("none", "optional", "required")


@dataclass(frozen=True)
class TlsConfig:
    """The files the emulator's TLS side needs (PEM)."""

    cert_file: str | os.PathLike[str]
    """The server certificate chain (it must name 127.0.0.1)."""
    key_file: str | os.PathLike[str]
    client_ca_file: str | os.PathLike[str] | None = None
    """The CA that signs accepted client certificates; needed unless `client_cert` is none."""
    client_cert: str = "none"
    """`none`: never asked for; `optional`: asked for and used when sent (mTLS login);
    `required`: the handshake fails without one, as a load balancer demanding it does."""

    def __post_init__(self) -> None:
        if self.client_cert not in CLIENT_CERT_MODES:
            raise ValueError(f"client_cert must be one of {CLIENT_CERT_MODES}")
        if self.client_cert != "none" and self.client_ca_file is None:
            raise ValueError("asking for client certificates needs client_ca_file")

    def server_context(self) -> ssl.SSLContext:
        """A server-side context with these files loaded."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(self.client_ca_file)
        if self.client_cert == "required":
            # A missing certificate then fails the handshake itself (an alert the client
            # reads at once). Under TLS 1.3 the refusal comes after the handshake and races
            # the client's first request, which may see a reset connection instead.
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = {
            "none": ssl.CERT_NONE,
            "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED,
        }[self.client_cert]
        return context
