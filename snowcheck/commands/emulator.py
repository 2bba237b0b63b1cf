"""``snowcheck emulator``: the bundled Table API emulator alone, on 127.0.0.1."""

from __future__ import annotations

from snowcheck.commands.demo import scenario_path
from snowcheck.emulator import ScenarioError, serve
from snowcheck.errors import ConfigError
from snowcheck.output.report import Terminal
from snowcheck.settings import EmulatorOptions


def run_emulator(options: EmulatorOptions, terminal: Terminal) -> int:
    """Serve a scenario until interrupted."""
    scenario = options.scenario
    try:
        with scenario_path(options.scenario) as path:
            scenario = str(path)
            serve(scenario, options.port, latency=options.latency)
    except ScenarioError as exc:
        raise ConfigError(f"scenario {scenario}: {exc}") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot serve on 127.0.0.1:{options.port}: {exc.strerror or exc} (try another --port)"
        ) from None
    return 0
