# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 3f: a failed `meshctl up` says why in one line, exits non-zero and
changes nothing: not the node's state directory, not its WireGuard device."""

import base64
import os
import time

import pytest

from meshlab import FAKE_MODES, wait_until


@pytest.fixture
def fresh(lab, control):
    """A started node that has not joined (no ControlURL, no AuthKeyFile)."""
    node = lab.add_node("alpha", join=False)
    node.start()
    node.wait_api(10)
    wait_until(lambda: node.status().get("state") == "needs-login", 10,
               what="state needs-login")
    return node


def assert_up_fails_cleanly(node, server, authkey, pin):
    before = (node.state_snapshot(), node.wg_show())
    cp = node.meshctl("up", "--server", server, "--authkey", authkey, "--pin", pin, timeout=60)
    lines = cp.stderr.strip().splitlines()
    assert cp.returncode != 0, f"meshctl up succeeded: {cp.stdout!r}"
    assert len(lines) == 1 and lines[0].strip(), f"want one line on stderr, got {cp.stderr!r}"
    after = (node.state_snapshot(), node.wg_show())
    assert after[0] == before[0], f"state dir changed: {sorted(before[0])} → {sorted(after[0])}"
    assert after[1] == before[1], f"WireGuard device changed: {before[1]} → {after[1]}"
    assert node.running, "meshd exited after a failed up"
    assert node.status()["state"] == "needs-login"
    return lines[0]


def test_wrong_authkey(control, fresh):
    msg = assert_up_fails_cleanly(fresh, control.url, "mskey-not-a-real-key", control.pin)
    # the server's reason, not just that something failed
    assert msg == "meshctl: control server refused the auth key: invalid auth key", msg


def test_expired_authkey(control, fresh):
    key = control.authkey(expires="1s")
    time.sleep(2)       # the point is that wall-clock time passes
    msg = assert_up_fails_cleanly(fresh, control.url, key.key, control.pin)
    assert msg == "meshctl: control server refused the auth key: auth key expired", msg


def test_wrong_pin(control, fresh):
    key = control.authkey()
    wrong = "sha256//" + base64.b64encode(os.urandom(32)).decode()
    assert wrong != control.pin
    msg = assert_up_fails_cleanly(fresh, control.url, key.key, wrong)
    print(msg)
    # the pin is checked before the key is sent: the one-time key is unused
    cp = fresh.meshctl("up", "--server", control.url, "--authkey", key.key, "--pin", control.pin)
    assert cp.returncode == 0, f"valid up after a wrong-pin attempt: {cp.stderr.strip()}"


@pytest.mark.parametrize("mode", FAKE_MODES)
def test_bad_server_reply(lab, fresh, mode):
    fake = lab.fake_control(mode)
    msg = assert_up_fails_cleanly(fresh, fake.url, "mskey-whatever", fake.pin)
    assert fake.requests >= 1, "meshd never reached the fake server"
    # past the challenge: the bad reply is the register's
    assert "request POST /v1/register" in fake.log_tail(1000), fake.log_tail()
    # it was reached and answered: a protocol error, not "cannot reach"
    assert "cannot reach" not in msg, msg
    print(msg)
