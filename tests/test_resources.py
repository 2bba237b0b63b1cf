"""Run-time files ship inside the package; config/examples/ keeps identical copies for readers."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import snowcheck
from snowcheck.about import version_line
from snowcheck.resources import DEMO_SCENARIO, EXAMPLE_SNAPSHOT, data_path

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "examples"


@pytest.mark.parametrize("name", [DEMO_SCENARIO, EXAMPLE_SNAPSHOT])
def test_the_readers_copy_is_identical_to_the_shipped_file(name: str) -> None:
    with data_path(name) as shipped:
        assert shipped.read_bytes() == (EXAMPLES / name).read_bytes(), (
            f"config/examples/{name} differs from snowcheck/data/{name}: "
            f"edit snowcheck/data/{name} and copy it over"
        )


def test_the_version_is_the_package_metadata() -> None:
    assert snowcheck.__version__ == metadata.version("snowcheck")
    pyproject = (EXAMPLES.parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{snowcheck.__version__}"' in pyproject


def test_version_names_snowcheck_python_and_the_libraries_as_pip_does() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "snowcheck", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == version_line() + "\n"
    python = ".".join(str(part) for part in sys.version_info[:3])
    expected = (
        rf"snowcheck {re.escape(metadata.version('snowcheck'))} from \S+snowcheck "
        rf"\(Python {python}; pysnow {re.escape(metadata.version('pysnow'))}, "
        rf"requests {re.escape(metadata.version('requests'))}, "
        rf"rich {re.escape(metadata.version('rich'))}\)\n"
    )
    assert re.fullmatch(expected, done.stdout), done.stdout
