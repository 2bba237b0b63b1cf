"""Files shipped inside the package (snowcheck/data/), found with importlib.resources.

They are found the same way in a checkout, an installed wheel or a zip: nothing
depends on where the package sits on disk. config/examples/ holds copies for
readers; a test keeps them identical.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

DEMO_SCENARIO = "demo-scenario.json"
EXAMPLE_SNAPSHOT = "snapshot.json"


@contextlib.contextmanager
def data_path(name: str) -> Iterator[Path]:
    """A real file path for a shipped data file, valid inside the ``with`` block."""
    with resources.as_file(resources.files("snowcheck") / "data" / name) as path:
        yield path
