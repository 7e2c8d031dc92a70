# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for the network-namespace scenarios (see meshlab.py).

`lab` skips only when namespaces cannot be made (not root, no `ip netns`);
missing binaries are an error. When a test fails, the tail of every daemon
log of its lab is added to the report.

The control server's database: SQLite (its state dir's file) unless
$MESHLAB_DATABASE=postgresql, or the test (or its module, with pytestmark)
carries @pytest.mark.databases("sqlite", "postgresql"), which runs it once
per engine. PostgreSQL is one real server per pytest session
(tests/pg/pgserver.py), a fresh database per lab; a missing PostgreSQL
fails the test, it never skips.
"""

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "pg"))
import meshlab  # noqa: E402
import pgserver  # noqa: E402

_netns_problem = None


def pytest_sessionstart(session):
    global _netns_problem
    _netns_problem = meshlab.netns_usable()
    if _netns_problem is None:
        meshlab.sweep_stale()
    # `timeout` and CI runners send SIGTERM: unwind like Ctrl-C so every
    # finalizer (namespaces, daemons) still runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def pytest_configure(config):
    config.addinivalue_line("markers", "databases(*engines): run once per control database engine "
                            "(sqlite, postgresql)")
    config.addinivalue_line(
        "markers", "background: mostly waiting; tools/test runs these in a second pytest beside the rest")


def pytest_generate_tests(metafunc):
    mark = metafunc.definition.get_closest_marker("databases")
    if mark and "bare_lab" in metafunc.fixturenames:
        metafunc.parametrize("database", list(mark.args), indirect=True)


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the session, removed at its end."""
    server = pgserver.PgServer().start()     # PgMissing: an error, not a skip
    yield server
    server.stop()


@pytest.fixture
def database(request):
    """The control database engine of this test's labs."""
    engine = getattr(request, "param", None) or os.environ.get("MESHLAB_DATABASE", "sqlite")
    if engine not in ("sqlite", "postgresql"):
        raise ValueError(f"MESHLAB_DATABASE={engine!r}: want sqlite or postgresql")
    return engine


@pytest.fixture
def bare_lab(request, tmp_path, database):
    """A Lab (underlay bridge namespace) that needs no meshd binaries."""
    if _netns_problem is not None:
        pytest.skip(_netns_problem)
    the_lab = meshlab.Lab(tmp_path / "lab")
    if database == "postgresql":
        the_lab.use_postgresql(request.getfixturevalue("pg_server"))
    request.node._meshlabs = getattr(request.node, "_meshlabs", []) + [the_lab]
    yield the_lab
    the_lab.close()


@pytest.fixture
def lab(bare_lab):
    for name in ("meshd-control", "meshd", "meshctl"):
        meshlab.binary(name)        # raises: a missing binary is an error
    return bare_lab


@pytest.fixture
def control(lab):
    """A running control server and its pin."""
    return lab.add_control()


@pytest.fixture
def mesh3(lab, control):
    """alpha, bravo, charlie joined with one reusable key, all READY."""
    key = control.authkey(reusable=True)
    nodes = [lab.add_node(n, authkey=key) for n in ("alpha", "bravo", "charlie")]
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_ready(30)
    return nodes


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for lab in getattr(item, "_meshlabs", []):
            report.sections.append((f"meshlab {lab.rid} logs ({lab.dir})", lab.log_tails()))
