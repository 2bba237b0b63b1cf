"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest
from fixtures.tls import TlsFiles, make_tls_files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA, a server certificate for 127.0.0.1 and client certificates, made once."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))
