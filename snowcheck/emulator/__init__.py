"""An embedded ServiceNow Table API emulator (standard library only) for tests and benchmarks.

from snowcheck.emulator import Emulator, Scenario

with Emulator(Scenario.load("scenario.json"), port=0) as emu:
    emu.url                       # http://127.0.0.1:PORT
    emu.faults.add(kind="status", status=429, retry_after=1, times=2)
    emu.rows("ecc_agent_issue")

HTTPS: `Emulator(scenario, tls=TlsConfig(cert, key, client_ca, client_cert="required"))`;
OAuth, API keys and access policies come from the scenario's `auth` section (see auth.py);
`emu.oauth.expire_access_tokens()` / `revoke_refresh_tokens()` steer tokens mid-run.
"""

from snowcheck.emulator.auth import AuthConfig, OAuthClient, OAuthServer
from snowcheck.emulator.faults import Fault, Faults
from snowcheck.emulator.runner import Emulator, serve
from snowcheck.emulator.scenario import BatchConfig, Scenario, ScenarioError, UserAccess
from snowcheck.emulator.server import LogEntry, sequential_rounds
from snowcheck.emulator.tls import TlsConfig

__all__ = [
    "AuthConfig",
    "BatchConfig",
    "Emulator",
    "Fault",
    "Faults",
    "LogEntry",
    "OAuthClient",
    "OAuthServer",
    "Scenario",
    "ScenarioError",
    "TlsConfig",
    "UserAccess",
    "sequential_rounds",
    "serve",
]
