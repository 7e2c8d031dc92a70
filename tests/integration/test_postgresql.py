# SPDX-License-Identifier: LGPL-2.1-or-later
"""The control server on PostgreSQL (issue 17, Done-when 5): a wrong or
unreachable database URL is one clear start-up error with the password
masked; a database server that goes away mid-run makes the control server
answer 503 (no crash, nothing half-written) and it recovers by itself when
the database is back. The control-plane tests that run on both engines
carry @pytest.mark.databases (conftest.py)."""

import subprocess
import threading
import time

import pytest

import meshlab
import pgserver
from test_hub import api, netmap, register


def control_cli(*args, timeout=30):
    return subprocess.run([meshlab.binary("meshd-control"), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_bad_database_url_is_one_clear_error(pg_server, tmp_path):
    """Every verb, serve included, refuses a database it cannot use at
    once, in one line that names the URL without its password."""
    state = str(tmp_path / "state")
    cases = [
        # no server at that socket
        ("postgresql://meshd:s3cret@/mesh?host=/nonexistent-meshd", "Cannot connect to the database "
         "postgresql://meshd:***@/mesh?host=/nonexistent-meshd"),
        # a server, but no such database
        (f"postgres://postgres:s3cret@/nosuchdb?host={pg_server.dir}", "database \"nosuchdb\" does not exist"),
        # not a URL libpq understands
        ("postgresql://meshd:s3cret@[::1/mesh", "Cannot connect to the database postgresql://meshd:***@"),
    ]
    for url, want in cases:
        for verb in (["serve", "--no-hub"], ["nodes", "list"], ["init", "--url", "https://192.0.2.1:8443"]):
            start = time.monotonic()
            cp = control_cli("--state-dir", state, "--database", url, *verb)
            assert cp.returncode != 0, f"{verb} with {url}: exit 0"
            assert time.monotonic() - start < 10, f"{verb} with {url}: took too long"
            lines = [line for line in cp.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, f"{verb} with {url}: want one line, got {cp.stderr!r}"
            assert want in lines[0], f"{verb} with {url}: {lines[0]!r}"
            assert "s3cret" not in cp.stderr + cp.stdout, f"{verb}: password shown: {cp.stderr!r}"

    # a database without a mesh: init first
    pg_server.create_database("empty_mesh")
    cp = control_cli("--state-dir", state, "--database", pg_server.url("empty_mesh"), "nodes", "list")
    assert cp.returncode != 0 and "not initialised, run 'meshd-control init'" in cp.stderr, cp.stderr
    pg_server.drop_database("empty_mesh")


def long_poll(control, token, since, out):
    start = time.monotonic()
    status, data = netmap(control, token, since=since, timeout=30)
    out.append((status, data, time.monotonic() - start))


@pytest.mark.databases("postgresql")
def test_database_outage_503_and_recovery(lab):
    """The database server stops while the control server runs: requests
    that need it get 503 and the server stays up; it starts again: the
    server answers 200 within seconds, nothing lost, and a change made by
    the CLI wakes a waiting long-poll at once."""
    own = pgserver.PgServer().start()      # not the session's: this one is stopped
    try:
        lab.use_postgresql(own)
        control = lab.add_control(hub=False)
        key = control.authkey(reusable=True)
        one = register(control, key, "one")
        status, before = netmap(control, one["token"], timeout=0)
        assert status == 200, (status, before)

        own.stop_server()
        status, data = netmap(control, one["token"], timeout=0)
        assert status == 503, (status, data)
        assert "database unavailable" in str(data), data
        assert control.running, "the control server exited when the database went away"
        cp = control.command("nodes", "list", check=False)
        assert cp.returncode != 0 and "Cannot connect to the database" in cp.stderr, cp.stderr

        own.start_server()
        deadline = time.monotonic() + 10
        while True:
            status, data = netmap(control, one["token"], timeout=0)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200, f"not back 10 s after the database: {status} {data}"
        assert data["version"] == before["version"], "the netmap changed across the outage"
        assert [n["name"] for n in control.nodes()] == ["one"]

        # the wake-up works again: a CLI commit answers a waiting long-poll
        out = []
        waiter = threading.Thread(target=long_poll, args=(control, one["token"], data["version"], out))
        waiter.start()
        time.sleep(1.0)                    # the request is waiting by now
        changed = time.monotonic()
        control.command("devices", "add", "phone", "--public-key", meshlab.fake_public_key())
        waiter.join(40)
        status, after, _ = out[0]
        assert status == 200 and after["version"] > data["version"], (status, after)
        took = time.monotonic() - changed
        print(f"long-poll answered {took:.2f} s after the CLI's commit")
        assert took < 2.0, f"long-poll answered only after {took:.2f} s"
    finally:
        lab.close()
        own.stop()
