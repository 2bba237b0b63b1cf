"""snowcheck: find out, remotely, why ServiceNow MID Server users cannot log in or connect."""

__version__ = "0.1.0"
