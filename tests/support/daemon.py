"""One way to run a floorstream daemon in a test: in this process or as a real process.

:class:`DaemonRunner` takes a config (YAML text or a parsed :class:`Config`) and runs it either
as a :class:`~floorstream.daemon.Daemon` in this process (``process=False``: the test can reach
the adapters and the pipeline) or as a real ``floorstream run`` process (``process=True``:
signals, SIGKILL, separate interpreters). Either way it can be started, stopped (cleanly:
SIGTERM for a process), started again on the same store, and read: :meth:`posts` and
:meth:`summaries` come from the store, oldest first. As a context manager it stops whatever is
still running on exit, so a failing test never leaves a daemon behind::

    with DaemonRunner(config_text) as daemon:
        daemon.start()
        wait_for(lambda: daemon.summaries())
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import select

from floorstream.config import Config, parse_config
from floorstream.daemon import Daemon
from floorstream.model import Post
from floorstream.plugins import Plugins, build_plugins
from floorstream.store import schema
from floorstream.store.store import Store

from .waiting import wait_for

__all__ = ["FLOORSTREAM", "DaemonRunner", "all_posts"]

#: the ``floorstream`` command of this interpreter's environment
FLOORSTREAM = str(Path(sys.executable).parent / "floorstream")


def all_posts(store: Store, *teams: str) -> list[Post]:
    """Every post in the store (or routed to one of ``teams``), oldest first."""
    p, pt = schema.posts, schema.post_teams
    query = select(p.c.seq).order_by(p.c.seq)
    if teams:
        query = (select(pt.c.post_seq).where(pt.c.team.in_(teams)).distinct()
                 .order_by(pt.c.post_seq))
    with store.engine.connect() as conn:
        seqs = list(conn.execute(query).scalars())
        found: list[Post] = []
        for start in range(0, len(seqs), 500):
            found += store._posts_by_seq(conn, seqs[start:start + 500])
    return found


class DaemonRunner:
    """A daemon for one test, in this process (default) or as a ``floorstream`` process.

    ``config``: YAML text or a parsed config (in-process only). ``plugins``: the plugin set
    (default: builtin and installed ones). ``environ``: ``${VAR}`` values for the config.
    ``process=True`` runs ``floorstream <command> -c <file>`` instead, with JSON logs in
    :attr:`log_path` (``workdir`` holds the config file and the log; default a new
    temporary directory). ``setup`` is called with each new in-process :class:`Daemon`
    before it starts (to hook into its pipeline or store).
    """

    def __init__(self, config: str | Config, *, plugins: Plugins | None = None,
                 environ: dict[str, str] | None = None, process: bool = False,
                 command: Sequence[str] = ("run",), workdir: Path | None = None,
                 name: str = "daemon", setup: Callable[[Daemon], object] | None = None
                 ) -> None:
        self.plugins = plugins or build_plugins()
        if isinstance(config, Config):
            assert not process, "a process needs the config as text"
            self.text: str | None = None
            self.config = config
        else:
            self.text = config
            self.config = parse_config(config, self.plugins, environ=environ)
        self.environ = environ
        self.process_mode = process
        self.command = list(command)
        self.name = name
        self.workdir = workdir
        self.setup = setup
        self.daemon: Daemon | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._store: Store | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def store_url(self) -> str:
        return self.config.settings.store

    @property
    def log_path(self) -> Path:
        return self._dir() / f"{self.name}.log"

    def _dir(self) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="fs-daemon-"))
        return self.workdir

    def start(self) -> Self:
        """Start (again): a new Daemon / process on the same config and store."""
        assert not self.running, "already running"
        if self.process_mode:
            assert self.text is not None
            path = self._dir() / f"{self.name}.yaml"
            path.write_text(self.text, encoding="utf-8")
            env = {**os.environ, **(self.environ or {}), "PYTHONUNBUFFERED": "1"}
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [FLOORSTREAM, *self.command, "-c", str(path), "--log-format", "json"],
                    stdout=log, stderr=subprocess.STDOUT, env=env)
        else:
            self.daemon = Daemon(self.config, self.plugins)
            if self.setup is not None:
                self.setup(self.daemon)
            self.daemon.start()
        return self

    @property
    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.daemon is not None

    def stop(self, timeout: float = 30.0, *, check: bool = True) -> None:
        """Stop cleanly: ``Daemon.stop`` in process, SIGTERM for a process (which must then
        exit 0 when ``check``)."""
        if self.daemon is not None:
            daemon, self.daemon = self.daemon, None
            daemon.stop(timeout)
        if self.process is not None:
            process, self.process = self.process, None
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
                    raise AssertionError(f"{self.name} did not stop within {timeout:g}s on "
                                         f"SIGTERM:\n{self.log()[-3000:]}") from None
            if check:
                assert process.returncode == 0, (
                    f"{self.name} exited with {process.returncode}:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the process: no goodbye, nothing drained."""
        assert self.process is not None, "only a process can be killed"
        process, self.process = self.process, None
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop whatever still runs (without judging its exit) and close the store."""
        self.stop(check=False)
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def log(self) -> str:
        """What a process wrote (JSON log lines), or "" for an in-process daemon."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- what it did ------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The daemon's store, opened by the test (it stays usable between runs)."""
        if self._store is None:
            self._store = Store.open(self.store_url)
        return self._store

    def posts(self, *teams: str) -> list[Post]:
        """Every post (or those routed to one of ``teams``), oldest first."""
        return all_posts(self.store, *teams)

    def summaries(self, *teams: str) -> list[str]:
        return [p.summary for p in self.posts(*teams)]

    def wait_posts(self, count: int, *teams: str, timeout: float = 20.0) -> list[Post]:
        """Wait until at least ``count`` posts are there; return them all."""
        return wait_for(lambda: (found if len(found := self.posts(*teams)) >= count else []),
                        timeout, f"{count} posts")

    def checkpoint(self, source: str) -> str | None:
        return self.store.checkpoints().get(source)

    def wait_checkpoint(self, source: str, timeout: float = 20.0) -> str:
        """Wait until ``source`` has committed a checkpoint (its first poll, its baseline)."""
        found = wait_for(lambda: self.checkpoint(source), timeout, f"a checkpoint of {source}")
        assert found is not None  # (wait_for returns a truthy value)
        return found

    def adapter(self, source: str, timeout: float = 20.0) -> Any:
        """The running adapter of ``source`` (in-process only), once the daemon made it."""
        daemon = self.daemon
        assert daemon is not None, "adapters are reachable in an in-process daemon only"
        return wait_for(lambda: daemon._adapters.get(source), timeout,
                        f"the adapter of {source}")

    def wait_status(self, source: str, state: str, timeout: float = 20.0) -> None:
        daemon = self.daemon
        assert daemon is not None
        wait_for(lambda: daemon.status[source].state == state, timeout,
                 f"{source} {state}")

