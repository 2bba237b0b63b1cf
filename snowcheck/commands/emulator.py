"""``snowcheck emulator``: the bundled Table API emulator alone, on 127.0.0.1."""

from __future__ import annotations

import ssl

from snowcheck.commands.demo import scenario_path
from snowcheck.emulator import ScenarioError, serve
from snowcheck.emulator.tls import TlsConfig
from snowcheck.errors import ConfigError
from snowcheck.output.report import Terminal
from snowcheck.settings import EmulatorOptions


def _tls(options: EmulatorOptions) -> TlsConfig | None:
    """HTTPS set-up from --tls-cert, --tls-key, --client-ca and --client-cert."""
    if not (options.tls_cert or options.tls_key):
        if options.client_ca or options.client_cert != "none":
            raise ConfigError(
                "--client-ca and --client-cert need HTTPS: give --tls-cert and --tls-key"
            )
        return None
    if not (options.tls_cert and options.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    try:
        return TlsConfig(options.tls_cert, options.tls_key, options.client_ca, options.client_cert)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def run_emulator(options: EmulatorOptions, terminal: Terminal) -> int:
    """Serve a scenario until interrupted."""
    scenario = options.scenario
    tls = _tls(options)
    try:
        with scenario_path(options.scenario) as path:
            scenario = str(path)
            serve(scenario, options.port, latency=options.latency, tls=tls)
    except ScenarioError as exc:
        raise ConfigError(f"scenario {scenario}: {exc}") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"cannot serve HTTPS with these files: {exc}") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot serve on 127.0.0.1:{options.port}: {exc.strerror or exc} (try another --port)"
        ) from None
    return 0
