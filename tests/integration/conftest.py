# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for the network-namespace scenarios (see meshlab.py).

`lab` skips only when namespaces cannot be made (not root, no `ip netns`);
missing binaries are an error. When a test fails, the tail of every daemon
log of its lab is added to the report.
"""

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import meshlab  # noqa: E402

_netns_problem = None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "background: mostly waiting; tools/test runs these in a second pytest beside the rest")


def pytest_sessionstart(session):
    global _netns_problem
    _netns_problem = meshlab.netns_usable()
    if _netns_problem is None:
        meshlab.sweep_stale()
    # `timeout` and CI runners send SIGTERM: unwind like Ctrl-C so every
    # finalizer (namespaces, daemons) still runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@pytest.fixture
def bare_lab(request, tmp_path):
    """A Lab (underlay bridge namespace) that needs no meshd binaries."""
    if _netns_problem is not None:
        pytest.skip(_netns_problem)
    the_lab = meshlab.Lab(tmp_path / "lab")
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
