"""Checked values of the emulator's --port and --latency (argparse types, one-line errors)."""

from __future__ import annotations

import argparse
import math

MAX_LATENCY = 600.0
"""Seconds: longer than any client waits, and short enough for the timers to hold."""


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"{port} is not a port: give 1 to 65535, or 0 for any free port"
        )
    return port


def latency_seconds(text: str) -> float:
    """Seconds added to every answer: a finite number from 0 to `MAX_LATENCY`."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_LATENCY:
        raise argparse.ArgumentTypeError(
            f"{text} is not a latency: give seconds from 0 to {MAX_LATENCY:g}"
        )
    return seconds
