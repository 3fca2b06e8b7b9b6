"""A throw-away PostgreSQL/PostGIS server for tests, on loopback, in a temporary data directory.

Uses the Debian packages ``postgresql`` and ``postgresql-<major>-postgis-3`` of the release (15 on
Debian 12, 17 on Debian 13; see scripts/install-system-deps.sh): the server binaries are those of
the newest PostgreSQL major installed under /usr/lib/postgresql. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` system user (which the Debian package
creates). The server listens on 127.0.0.1 on a free port, with a Unix socket in the temporary
directory, and trusts local connections: it holds nothing but test data and lives only as long
as the test session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PostgisUnavailableError(RuntimeError):
    """PostgreSQL or PostGIS is not installed or could not start; the message says why."""


def _bin_dir() -> Path:
    candidates = sorted((p for p in glob.glob("/usr/lib/postgresql/*/bin/initdb") if p.split("/")[4].isdigit()),
                        key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgisUnavailableError("PostgreSQL's initdb was not found; install the Debian package 'postgresql' "
                             "(make sysdeps).")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgisServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``port`` and ``dbname`` to connect."""

    def __init__(self, dbname: str = "territories"):
        self.dbname = dbname
        self.user = "postgres"
        self.port = 0
        self.bin = _bin_dir()
        self.major = self.bin.parent.name if self.bin.parent.name.isdigit() else "<major>"  # .../<major>/bin
        self.root = Path(tempfile.mkdtemp(prefix="territory-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        self.started = False

    # -- running commands as the server's owner ---------------------------------------------------
    def _prepare_owner(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as error:
            raise PostgisUnavailableError("Running as root, but there is no 'postgres' user to run PostgreSQL as; "
                                     "install the Debian package 'postgresql'.") from error
        os.chmod(self.root, 0o755)
        os.chown(self.root, owner.pw_uid, owner.pw_gid)
        runuser = shutil.which("runuser")
        self._as_user = [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-s", "/bin/sh", "-c"]

    def _run(self, *command: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
        full = list(command)
        if self._as_user and self._as_user[0] == "su":
            import shlex

            full = self._as_user + [" ".join(shlex.quote(c) for c in command)]
        elif self._as_user:
            full = self._as_user + full
        completed = subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd=str(self.root))
        if check and completed.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgisUnavailableError(f"{' '.join(command)} failed ({completed.returncode}):\n"
                                     f"{completed.stdout}\n{completed.stderr}\n{log}")
        return completed

    def sql(self, statement: str, dbname: str | None = None) -> str:
        return self._run(str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                         "-d", dbname or self.dbname, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement).stdout

    # -- lifetime --------------------------------------------------------------------------------
    def start(self) -> PostgisServer:
        self._prepare_owner()
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        for attempt in range(3):
            self.port = _free_port()
            try:
                self._launch()
                break
            except PostgisUnavailableError as error:
                # another process (a parallel test worker) took the port between the probe and the
                # server's start: start again on another free port
                if attempt == 2 or "could not bind" not in str(error):
                    raise
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.dbname)
        try:
            self.sql("CREATE EXTENSION postgis")
        except PostgisUnavailableError as error:
            raise PostgisUnavailableError(f"PostgreSQL {self.major} runs but the PostGIS extension is missing; install "
                                          f"the Debian package 'postgresql-{self.major}-postgis-3' (make sysdeps).\n"
                                          + str(error)) from error
        return self

    def _launch(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                  "-t", "60", "start")
        self.started = True
        deadline = time.time() + 30
        while True:
            ready = self._run(str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), check=False)
            if ready.returncode == 0:
                break
            if time.time() > deadline:
                raise PostgisUnavailableError("PostgreSQL started but does not accept connections.")
            time.sleep(0.2)

    def halt(self) -> None:
        """Stop the server as an administrator would (``pg_ctl stop -m fast``: open connections are
        closed), keeping its data; :meth:`resume` starts it again on the same port."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server again after :meth:`halt`, with the same data, port and socket."""
        self._launch()

    @property
    def socket_dir(self) -> str:
        """The folder of the server's Unix socket: a second, separate way to connect."""
        return str(self.root)

    def load(self, source: str, table: str) -> None:
        """Copy a vector dataset into ``table`` with ogr2ogr (primary key ``fid``, geometry ``geom``)."""
        ogr2ogr = shutil.which("ogr2ogr")
        if ogr2ogr is None:
            raise PostgisUnavailableError("ogr2ogr was not found; install the Debian package 'gdal-bin'.")
        connection = f"PG:host=127.0.0.1 port={self.port} user={self.user} dbname={self.dbname}"
        completed = subprocess.run([ogr2ogr, "-f", "PostgreSQL", connection, source, "-nln", table,
                                    "-lco", "GEOMETRY_NAME=geom", "-lco", "FID=fid", "-nlt", "PROMOTE_TO_MULTI"],
                                   capture_output=True, text=True, timeout=120)
        if completed.returncode != 0:
            raise PostgisUnavailableError(f"ogr2ogr could not load {source}: {completed.stderr}")

    def uri(self, table: str, srid: int, key: str = "fid", host: str = "127.0.0.1") -> str:
        """A QGIS data source for ``table``; ``host`` may be :attr:`socket_dir` for a connection of
        its own (QGIS shares connections with the same connection string)."""
        from qgis.core import QgsDataSourceUri, QgsWkbTypes

        uri = QgsDataSourceUri()
        uri.setConnection(host, str(self.port), self.dbname, self.user, "")
        uri.setDataSource("public", table, "geom", "", key)
        uri.setSrid(str(srid))
        uri.setWkbType(QgsWkbTypes.Type.MultiPolygon)
        return uri.uri(False)

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
