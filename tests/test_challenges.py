"""Reading a 401's WWW-Authenticate header: which schemes, and which `auth` setting uses each."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import requests

from snowcheck.emulator import Emulator, Scenario
from snowcheck.servicenow.challenges import Scheme, advertised_schemes, describe

OAUTH = ("oauth-password", "oauth-client-credentials")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, []),
        ("", []),
        ('BASIC realm="Service-now"', [("BASIC", ("basic",))]),
        (
            'BEARER realm="Service-now", BASIC realm="Service-now"',
            [("BEARER", OAUTH), ("BASIC", ("basic",))],
        ),
        (
            ["BEARER realm=x", 'APIKEY realm="Service-now"'],
            [("BEARER", OAUTH), ("APIKEY", ("api-key",))],
        ),
        ('CERTIFICATE realm="Service-now"', [("CERTIFICATE", ("mtls",))]),
        ("HMAC, Basic", [("HMAC", ()), ("Basic", ("basic",))]),
        # Quoted commas and parameters after the first do not start a new scheme.
        (
            'Digest realm="a, b", qop="auth", Basic realm="x"',
            [("Digest", ()), ("Basic", ("basic",))],
        ),
        ("basic, BASIC realm=y", [("basic", ("basic",))]),
    ],
)
def test_schemes_and_settings(
    header: str | list[str] | None, expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    assert [(s.name, s.settings) for s in advertised_schemes(header)] == expected


def test_parameters_are_kept() -> None:
    (digest,) = advertised_schemes('Digest realm="a, b", qop="auth"')
    assert digest == Scheme("Digest", 'realm="a, b", qop="auth"', ())


def test_describe_gives_one_line_per_scheme() -> None:
    schemes = advertised_schemes('BEARER realm="Service-now", HMAC')
    assert describe(schemes) == [
        "BEARER: auth = oauth-password or oauth-client-credentials",
        "HMAC: no snowcheck auth setting uses it",
    ]


def test_what_the_emulator_advertises_names_the_settings() -> None:
    data = {
        "tables": {"sys_user": []},
        "auth": {"tables": {"sys_user": ["oauth", "api-key", "basic"]}},
    }
    with Emulator(Scenario.from_dict(data)) as emulator:
        response = requests.get(f"{emulator.url}/api/now/table/sys_user", timeout=5)
    assert response.status_code == 401
    schemes = advertised_schemes(response.headers["WWW-Authenticate"])
    assert [s.settings for s in schemes] == [("basic",), OAUTH, ("api-key",)]


def test_the_servicenow_layer_imports_nothing_above_it() -> None:
    """The ServiceNow layer sits below the check: only itself and what is below it (errors,
    redact, the read pool)."""
    folder = Path(__file__).resolve().parents[1] / "snowcheck" / "servicenow"
    for module in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("snowcheck."):
                    allowed = (
                        "snowcheck.servicenow",
                        "snowcheck.errors",
                        "snowcheck.redact",
                        "snowcheck.read_pool",
                    )
                    assert name.startswith(allowed), f"{module.name}: {name}"
