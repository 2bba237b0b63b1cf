"""Entry point for ``python -m snowcheck``."""

from snowcheck.cli import main

raise SystemExit(main())
