"""`python -m snowcheck.emulator --scenario FILE --port N`: serve an emulated instance."""

from __future__ import annotations

import argparse
import ssl
import sys

from snowcheck.emulator.options import latency_seconds, port_number
from snowcheck.emulator.runner import serve
from snowcheck.emulator.scenario import ScenarioError
from snowcheck.emulator.tls import CLIENT_CERT_MODES, TlsConfig


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until Ctrl-C; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m snowcheck.emulator",
        description="Serve an emulated ServiceNow Table API on 127.0.0.1.",
    )
    parser.add_argument("--scenario", metavar="FILE", help="scenario JSON (default: empty)")
    parser.add_argument("--port", type=port_number, default=0, help="port (default 0: a free one)")
    parser.add_argument(
        "--latency", type=latency_seconds, default=0.0, help="seconds added to every API request"
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    parser.add_argument("--client-ca", metavar="PEM", help="CA of accepted client certificates")
    parser.add_argument(
        "--client-cert",
        choices=CLIENT_CERT_MODES,
        default="none",
        help="ask for a client certificate (default: none)",
    )
    args = parser.parse_args(argv)
    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        try:
            tls = TlsConfig(args.tls_cert, args.tls_key, args.client_ca, args.client_cert)
        except ValueError as error:
            parser.error(str(error))
    try:
        serve(args.scenario, args.port, latency=args.latency, tls=tls)
    except (ScenarioError, ssl.SSLError) as error:
        print(f"snowcheck emulator: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"snowcheck emulator: cannot listen on port {args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
