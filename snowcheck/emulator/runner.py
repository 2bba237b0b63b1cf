"""Run an emulated instance: in a background thread (`Emulator`) or in the foreground (`serve`)."""

from __future__ import annotations

import contextlib
import shlex
import sys
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType

from snowcheck.emulator.api import TableApi
from snowcheck.emulator.auth import OAuthServer
from snowcheck.emulator.clock import Clock
from snowcheck.emulator.faults import Faults
from snowcheck.emulator.scenario import BatchConfig, Scenario, resolve_relative
from snowcheck.emulator.server import LOOPBACK, App, EmulatorHTTPServer, LogEntry, RequestLog
from snowcheck.emulator.store import Store
from snowcheck.emulator.tls import TlsConfig


class Emulator:
    """An emulated ServiceNow instance serving the Table API on 127.0.0.1.

    Use as a context manager (or `start()` / `stop()`); `port=0` picks a free port. The rows,
    log and clock stay readable after it stops. With `tls` it serves HTTPS.
    """

    def __init__(
        self, scenario: Scenario | None = None, *, port: int = 0, tls: TlsConfig | None = None
    ) -> None:
        scenario = scenario if scenario is not None else Scenario.empty()
        self.scenario = scenario
        self.clock = Clock(scenario.now)
        self.store = Store(self.clock, scenario.references)
        for table, rows in scenario.tables.items():
            self.store.bulk_load(table, rows)
        self.faults = Faults()
        for fault in scenario.faults:
            self.faults.add_fault(fault)
        self.api = TableApi(
            self.store,
            self.clock,
            scenario.users,
            self.faults,
            base_url="",
            batch=scenario.batch,
            auth=scenario.auth,
        )
        self.tls = tls
        self._ssl_context = tls.server_context() if tls is not None else None
        self._requested_port = port
        self._log = RequestLog()
        self._stopping = threading.Event()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind 127.0.0.1:port and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        app = App(self.api, self.store, self.clock, self.faults, self._log, self._stopping)
        self._stopping.clear()
        server = EmulatorHTTPServer(self._requested_port, app, self._ssl_context)
        self._server = server
        self.api.base_url = self.url
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how long stop() may wait
            name=f"snowcheck-emulator-{server.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (requests in progress are abandoned)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on latency or `slow` faults
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def wait(self) -> None:
        """Block until `stop()` is called from another thread (or Ctrl-C)."""
        while not self._stopping.wait(0.5):
            pass

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests use ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return self._server.port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, or `https://` with TLS."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    @property
    def credentials(self) -> tuple[str, str]:
        """The first scenario user's name and password (`admin` / `admin` by default)."""
        name, access = next(iter(self.api.users.items()))
        return name, access.password

    @property
    def oauth(self) -> OAuthServer:
        """The token issuer: lifetimes, `expire_access_tokens()`, `revoke_refresh_tokens()`."""
        return self.api.oauth

    @property
    def latency(self) -> float:
        """Seconds every `/api/` request waits before being served."""
        return self.faults.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.faults.latency = seconds

    @property
    def batch(self) -> BatchConfig:
        """How the batch API behaves; assign a new `BatchConfig` to change it."""
        return self.api.batch

    @batch.setter
    def batch(self, config: BatchConfig) -> None:
        self.api.batch = config

    @property
    def log(self) -> list[LogEntry]:
        """The request log (no headers, so never credentials)."""
        return self._log.entries()

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        self._log.clear()

    def rows(self, table: str) -> list[dict[str, str]]:
        """Every stored row of `table`, raw, in insertion order."""
        return self.store.rows(table)

    def load_rows(self, table: str, rows: Iterable[Mapping[str, object]]) -> int:
        """Bulk-load rows (one transaction; fields created as seen); returns the count."""
        return self.store.bulk_load(table, rows)

    def put_rows(
        self, table: str, rows: Iterable[Mapping[str, object]], *, replace: bool = False
    ) -> int:
        """Change the instance while it serves, as `POST /__emulator/tables/{t}` does.

        A row with a known sys_id updates that row, one without is added (`replace`: the
        table holds exactly `rows` afterwards); relative times (`-0s`, `-5m`) count from
        the emulator's clock. Returns the rows written. A fix made mid-watch, for example:
        `put_rows("ecc_agent", [{"sys_id": mid, "status": "Up"}])` and
        `put_rows("sysevent", [{"name": "login", "parm1": user, "sys_created_on": "-0s"}])`.
        """
        now = self.clock.now()
        resolved = [
            {name: resolve_relative(v, now) if isinstance(v, str) else v for name, v in r.items()}
            for r in rows
        ]
        return self.store.put_rows(table, resolved, replace=replace)


def serve(
    scenario_path: str | None, port: int, *, latency: float = 0.0, tls: TlsConfig | None = None
) -> None:
    """Serve a scenario (or an empty instance) on 127.0.0.1:port until Ctrl-C.

    Prints to stderr the URL and the user name to log in with, then the command that
    points snowcheck at it (URL, user and password).
    """
    scenario = Scenario.load(scenario_path) if scenario_path else Scenario.empty()
    emulator = Emulator(scenario, port=port, tls=tls)
    emulator.latency = latency
    with emulator:
        user, password = emulator.credentials
        print(f"snowcheck emulator listening on {emulator.url} (user: {user})", file=sys.stderr)
        print(
            f"point snowcheck at it: SERVICENOW_PASSWORD={shlex.quote(password)} "
            f"snowcheck check --instance {emulator.url} --user {shlex.quote(user)}",
            file=sys.stderr,
        )
        sys.stderr.flush()
        with contextlib.suppress(KeyboardInterrupt):
            emulator.wait()
