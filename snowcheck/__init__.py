"""snowcheck: find out, remotely, why ServiceNow MID Server users cannot log in or connect."""

from importlib import metadata

try:
    __version__ = metadata.version("snowcheck")
    """Defined once, in pyproject.toml; read from the installed package's metadata."""
except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
