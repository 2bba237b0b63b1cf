"""`python -m snowcheck.emulator --scenario FILE --port N`: serve an emulated instance."""

from __future__ import annotations

import argparse
import sys

from snowcheck.emulator.options import latency_seconds, port_number
from snowcheck.emulator.runner import serve
from snowcheck.emulator.scenario import ScenarioError


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
    args = parser.parse_args(argv)
    try:
        serve(args.scenario, args.port, latency=args.latency)
    except ScenarioError as error:
        print(f"snowcheck emulator: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"snowcheck emulator: cannot listen on port {args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
