# SPDX-License-Identifier: LGPL-2.1-or-later
"""A throw-away PostgreSQL server for the store's tests (issue 17).

Debian's postgresql package (server binaries in /usr/lib/postgresql/N/bin),
no mock: initdb into a fresh directory under /tmp, the server on a unix
socket in that directory only (listen_addresses=''), run as user postgres
when we are root (the server refuses root). Durability is off (fsync,
full_page_writes): the data dies with the test anyway. Removed on stop(),
and by the `run` wrapper even when the command fails.

    srv = PgServer(); srv.start()
    url = srv.create_database("t1")   # postgresql:///t1?host=/tmp/...&user=postgres
    srv.stop()                        # rm -rf of everything

As a script (meson's wrapper for the unit tests):
    pgserver.py run -- COMMAND ARGS...
runs COMMAND with MESHD_TEST_PG_HOST (the socket directory) and
MESHD_TEST_PG_USER set; its exit status is ours. A missing PostgreSQL is a
failure with a message saying what to install, never a skip.

Python 3.11 standard library only.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

USER = "postgres"


class PgMissing(RuntimeError):
    pass


def bindir() -> str:
    """The newest installed server's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise PgMissing("PostgreSQL server not installed (no /usr/lib/postgresql/*/bin/initdb): "
                        "apt-get install postgresql libpq-dev (tools/setup installs them)")
    return os.path.dirname(found[-1])


class PgServer:
    def __init__(self):
        self.bin = bindir()
        self.dir: str | None = None
        self.root = os.geteuid() == 0
        self.running = False

    @property
    def host(self) -> str:
        return self.dir

    def _as_postgres(self, *argv, check=True, timeout=60):
        cmd = [os.path.join(self.bin, argv[0]), *argv[1:]]
        if self.root:
            cmd = ["runuser", "-u", USER, "--", *cmd]
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
        if check and cp.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({cp.returncode}):\n{cp.stdout}{cp.stderr}")
        return cp

    def start(self) -> "PgServer":
        self.dir = tempfile.mkdtemp(prefix="meshd-pg-", dir="/tmp")
        try:
            if self.root:
                import pwd
                pw = pwd.getpwnam(USER)
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            data = os.path.join(self.dir, "data")
            self._as_postgres("initdb", "-D", data, "-A", "trust", "-U", USER, "-E", "UTF8",
                              "--locale=C", "--no-sync")
            self.start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def start_server(self):
        """Starts (again, after stop_server()) the server on the same data."""
        opts = (f"-k {self.dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
                "-c synchronous_commit=off -c max_connections=200")
        self._as_postgres("pg_ctl", "-D", os.path.join(self.dir, "data"), "-l",
                          os.path.join(self.dir, "log"), "-w", "-t", "60", "-o", opts, "start")
        self.running = True

    def stop_server(self):
        """Stops the server (fast: connections are cut), keeping its data."""
        if self.running:
            self._as_postgres("pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "fast", "-w",
                              "stop", check=False)
            self.running = False

    def stop(self):
        if self.dir is None:
            return
        try:
            if self.running:
                self._as_postgres("pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "immediate",
                                  "-w", "stop", check=False)
                self.running = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def url(self, dbname: str) -> str:
        return f"postgresql:///{dbname}?host={self.dir}&user={USER}"

    def psql(self, sql: str, dbname="postgres") -> str:
        cp = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                             "-h", self.dir, "-U", USER, "-d", dbname, "-c", sql],
                            capture_output=True, text=True, timeout=60)
        if cp.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {cp.stderr}")
        return cp.stdout

    def create_database(self, dbname: str) -> str:
        self.psql(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)

    def drop_database(self, dbname: str):
        if self.running:
            self.psql(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def log_tail(self, lines=40) -> str:
        try:
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return "(no log)"


def main(argv) -> int:
    if len(argv) < 3 or argv[0] != "run" or argv[1] != "--":
        print("usage: pgserver.py run -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    try:
        srv = PgServer()
    except PgMissing as e:
        print(f"pgserver: {e}", file=sys.stderr)
        return 1
    start = time.monotonic()
    try:
        srv.start()
        print(f"pgserver: PostgreSQL up in {srv.dir} ({time.monotonic() - start:.1f} s)", file=sys.stderr)
        env = dict(os.environ, MESHD_TEST_PG_HOST=srv.dir, MESHD_TEST_PG_USER=USER)
        rc = subprocess.run(argv[2:], env=env).returncode
        if rc != 0:
            print(f"pgserver: server log:\n{srv.log_tail()}", file=sys.stderr)
        return rc
    finally:
        srv.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
