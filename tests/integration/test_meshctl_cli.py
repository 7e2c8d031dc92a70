# SPDX-License-Identifier: LGPL-2.1-or-later
"""meshctl as a user and a script see it, against a fake meshd (fake_meshd.py):
no daemon, no network, no root. MESHCTL names the binary (default
build/src/ctl/meshctl); the tests skip when it is not built."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_meshd import FakeMeshd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MESHCTL = Path(os.environ.get("MESHCTL", ROOT / "build" / "src" / "ctl" / "meshctl"))

pytestmark = pytest.mark.skipif(not os.access(MESHCTL, os.X_OK),
                                reason=f"{MESHCTL} is not built")


def meshctl(*args, input=None, env=None, timeout=30):
    full_env = {k: v for k, v in os.environ.items() if k != "MESHD_SOCKET"}
    full_env.update(env or {})
    return subprocess.run([str(MESHCTL), *map(str, args)], input=input, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def meshd():
    # Not tmp_path: a Unix socket path must stay under 108 bytes.
    with tempfile.TemporaryDirectory(prefix="meshctl-") as d:
        with FakeMeshd(Path(d) / "io.meshd.sock") as fake:
            yield fake


def ctl(meshd, *args, **kw):
    return meshctl("--socket", meshd.path, *args, **kw)


def one_error_line(r, text):
    assert r.stderr == f"meshctl: {text}\n"


# --- keys: no daemon needed ------------------------------------------------

def test_genkey_is_a_clamped_curve25519_key():
    r = meshctl("genkey")
    assert r.returncode == 0
    key = base64.b64decode(r.stdout.strip(), validate=True)
    assert len(r.stdout) == 45 and len(key) == 32
    assert key[0] & 7 == 0 and key[31] & 0x80 == 0 and key[31] & 0x40


@pytest.mark.skipif(not shutil.which("wg"), reason="wg(8) not installed")
@pytest.mark.parametrize("source", ["meshctl", "wg"])
def test_pubkey_matches_wg(source):
    for _ in range(5):
        private = subprocess.run(["wg", "genkey"] if source == "wg" else [str(MESHCTL), "genkey"],
                                 capture_output=True, text=True, check=True).stdout
        want = subprocess.run(["wg", "pubkey"], input=private, capture_output=True,
                              text=True, check=True).stdout
        r = meshctl("pubkey", input=private)
        assert (r.returncode, r.stdout, r.stderr) == (0, want, "")


@pytest.mark.parametrize("bad", ["", "not a key\n", "A" * 44 + "\n",
                                 "pTxOnom++kAALwxGQfxN3Jtw3/BOeCNHuhm8+7kVI2k= trailing\n"])
def test_pubkey_refuses_bad_input(bad):
    r = meshctl("pubkey", input=bad)
    assert (r.returncode, r.stdout) == (1, "")
    one_error_line(r, "invalid private key on stdin")


# --- status and peers -------------------------------------------------------

def test_status_for_people(meshd):
    r = ctl(meshd, "status")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^ +Name: laptop$", out, re.M)
    assert re.search(r"^ +FQDN: laptop\.mesh\.internal$", out, re.M)
    assert re.search(r"^ +Addresses: 100\.64\.0\.2\n +fd7a:115c:a1e0::2$", out, re.M)
    assert re.search(r"^ +State: online$", out, re.M)
    assert re.search(r"^Control server: https://control\.example\.net:8443 \(connected\)$", out, re.M)
    header, nas, backup = out.split("\n\n", 1)[1].splitlines()
    assert header.split() == ["NAME", "MESH", "IPV4", "PATH", "ENDPOINT", "REACHABLE",
                              "HANDSHAKE", "RTT", "WHY", "(PATH)"]
    assert re.fullmatch(r"nas +100\.64\.0\.3 +direct +192\.0\.2\.10:41641 +yes +1[23]s ago +1\.23 ms"
                        r" +probe replies over the direct path", nas)
    assert re.fullmatch(r"backup +100\.64\.0\.4 +relay +- +no +never +- +no probe reply over the direct path",
                        backup)
    # columns line up
    assert nas.index("100.64") == backup.index("100.64") == header.index("MESH IPV4")


def test_status_shows_what_it_waits_for(meshd):
    meshd.status.update(state="starting", status_text="waiting for nas, backup",
                        control_connected=False)
    out = ctl(meshd, "status").stdout
    assert re.search(r"^ +State: starting$", out, re.M)
    assert re.search(r"^ +Status: waiting for nas, backup$", out, re.M)
    assert "(not connected)" in out


def test_status_json_merges_self_and_peers(meshd):
    r = ctl(meshd, "status", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"self": meshd.status, "peers": meshd.peers}
    assert r.stdout.count("\n") > 10        # pretty-printed for people reading it


def test_peers(meshd):
    r = ctl(meshd, "peers")
    assert r.returncode == 0
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["NAME", "nas", "backup"]
    r = ctl(meshd, "--json", "peers")
    assert json.loads(r.stdout) == meshd.peers


def test_no_peers(meshd):
    meshd.peers.clear()
    assert ctl(meshd, "peers").stdout == "No peers.\n"
    assert json.loads(ctl(meshd, "peers", "--json").stdout) == []


def test_status_before_joining(meshd):
    meshd.status = {"state": "needs-login", "status_text": "needs login",
                    "control_connected": False}
    meshd.handlers["io.meshd.ListPeers"] = lambda p: meshd.fail(
        "io.meshd.NotJoined", message="not joined")
    r = ctl(meshd, "status")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^ +State: needs-login$", r.stdout, re.M)
    assert r.stdout.endswith("No peers.\n")


# --- ping -------------------------------------------------------------------

def test_ping_reachable_peer(meshd):
    r = ctl(meshd, "ping", "nas", "-c", "1")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "pong from nas (100.64.0.3) via direct: time=1.23 ms\n"
    assert meshd.calls == [("io.meshd.Ping", {"peer": "nas", "timeout_usec": 2_000_000})]


def test_ping_default_count_and_summary(meshd):
    r = ctl(meshd, "ping", "nas", "--timeout", "0.5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["pong from nas (100.64.0.3) via direct: time=1.23 ms"] * 3
    assert lines[3].startswith("nas: 3 sent, 3 received, 0% loss")
    assert [c[1]["timeout_usec"] for c in meshd.calls] == [500_000] * 3


def test_ping_json_lines(meshd):
    r = ctl(meshd, "--json", "ping", "-c", "1", "nas")
    assert json.loads(r.stdout) == {"peer": "nas", "address": "100.64.0.3",
                                    "rtt_usec": 1234, "path": "direct"}


def test_ping_unknown_peer(meshd):
    r = ctl(meshd, "ping", "ghost")
    assert (r.returncode, r.stdout) == (1, "")
    one_error_line(r, "unknown peer 'ghost'")
    assert len(meshd.calls) == 1            # no point in asking again


def test_ping_no_reply(meshd):
    r = ctl(meshd, "ping", "backup", "-c", "1")
    assert (r.returncode, r.stdout) == (1, "")
    one_error_line(r, "no reply from backup: no probe reply within 2s")


# --- ip ---------------------------------------------------------------------

def test_ip(meshd):
    assert ctl(meshd, "ip").stdout == "100.64.0.2\nfd7a:115c:a1e0::2\n"
    assert ctl(meshd, "ip", "-4").stdout == "100.64.0.2\n"
    assert ctl(meshd, "ip", "nas", "-6").stdout == "fd7a:115c:a1e0::3\n"
    assert ctl(meshd, "ip", "backup.mesh.internal", "-4").stdout == "100.64.0.4\n"
    assert json.loads(ctl(meshd, "ip", "nas", "--json").stdout) == {
        "ipv4": "100.64.0.3", "ipv6": "fd7a:115c:a1e0::3"}
    r = ctl(meshd, "ip", "ghost")
    assert r.returncode == 1
    one_error_line(r, "unknown peer 'ghost'")


# --- wait-online ------------------------------------------------------------

def test_wait_online_success(meshd):
    r = ctl(meshd, "wait-online", "nas", "--timeout", "5")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert meshd.calls == [("io.meshd.WaitOnline", {"peers": ["nas"], "timeout_usec": 5_000_000})]


def test_wait_online_any(meshd):
    r = ctl(meshd, "wait-online", "--any", "nas", "backup")
    assert r.returncode == 0, r.stderr
    assert meshd.calls[0][1] == {"peers": ["nas", "backup"], "any": True,
                                 "timeout_usec": 120_000_000}


def test_wait_online_timeout_names_peers(meshd):
    r = ctl(meshd, "wait-online", "nas", "backup", "--timeout", "3")
    assert (r.returncode, r.stdout) == (1, "")
    one_error_line(r, "timed out after 3s waiting for backup")


def test_wait_online_forever_is_passed_on(meshd):
    r = ctl(meshd, "wait-online", "--timeout", "0")
    assert r.returncode == 1
    assert meshd.calls[0][1] == {"timeout_usec": 0}


# --- join and leave ---------------------------------------------------------

UP = ["up", "--server", "https://control.example.net:8443", "--pin", "sha256//abc="]


def test_up(meshd):
    r = ctl(meshd, *UP, "--authkey", "mk_secret")
    assert (r.returncode, r.stdout, r.stderr) == (0, "Joined as laptop (100.64.0.2)\n", "")
    assert meshd.calls == [("io.meshd.Up", {"server": "https://control.example.net:8443",
                                            "authkey": "mk_secret", "pin": "sha256//abc="})]


def test_up_authkey_file(meshd, tmp_path):
    (tmp_path / "key").write_text("mk_from_file\n")
    assert ctl(meshd, *UP, "--authkey-file", tmp_path / "key").returncode == 0
    assert ctl(meshd, *UP, "--authkey-file", "-", input="mk_from_stdin\n").returncode == 0
    assert [c[1]["authkey"] for c in meshd.calls] == ["mk_from_file", "mk_from_stdin"]


@pytest.mark.parametrize("error, message, text", [
    ("io.meshd.AuthFailed", "invalid auth key",
     "control server refused the auth key: invalid auth key"),
    ("io.meshd.PinMismatch", "server key sha256//xyz= does not match",
     "control server's key does not match the pin: server key sha256//xyz= does not match"),
    ("io.meshd.ControlUnreachable", "connection refused",
     "cannot reach the control server: connection refused"),
    ("io.meshd.AlreadyJoined", None, "already joined a mesh (use 'meshctl logout' first)"),
    ("io.meshd.PermissionDenied", "needs root", "up: permission denied (run as root)"),
])
def test_up_errors(meshd, error, message, text):
    params = {"message": message} if message else {}
    meshd.handlers["io.meshd.Up"] = lambda p: meshd.fail(error, **params)
    r = ctl(meshd, *UP, "--authkey", "mk_secret")
    assert (r.returncode, r.stdout) == (1, "")
    one_error_line(r, text)


@pytest.mark.parametrize("verb", ["down", "logout"])
def test_down_logout(meshd, verb):
    r = ctl(meshd, verb)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    method = "io.meshd." + verb.capitalize()
    assert meshd.calls == [(method, {})]
    meshd.handlers[method] = lambda p: meshd.fail("io.meshd.PermissionDenied", message="root only")
    r = ctl(meshd, verb)
    assert r.returncode == 1
    one_error_line(r, f"{verb}: permission denied (run as root)")


# --- finding the daemon, usage ----------------------------------------------

def test_daemon_not_running():
    r = meshctl("--socket", "/nonexistent/io.meshd.sock", "status")
    assert (r.returncode, r.stdout) == (1, "")
    one_error_line(r, "cannot reach meshd at /nonexistent/io.meshd.sock: "
                      "No such file or directory — is meshd running?")


def test_socket_from_environment(meshd):
    r = meshctl("ip", "-4", env={"MESHD_SOCKET": str(meshd.path)})
    assert (r.returncode, r.stdout) == (0, "100.64.0.2\n")
    # --socket wins over the environment
    r = meshctl("--socket", meshd.path, "ip", "-4", env={"MESHD_SOCKET": "/nonexistent"})
    assert r.returncode == 0


@pytest.mark.parametrize("args, text", [
    ([], "no command given (see 'meshctl --help')"),
    (["frobnicate"], "unknown command 'frobnicate' (see 'meshctl --help')"),
    (["--frobnicate", "status"], "unknown option '--frobnicate' (see 'meshctl --help')"),
    (["ping"], "'ping' needs an argument (see 'meshctl --help')"),
    (["ping", "nas", "-c", "x"], "invalid count 'x' (a number from 1 to 1000000)"),
    (["status", "--any"], "--any does not apply to 'status' (see 'meshctl --help')"),
    (["up", "--server", "https://x"], "'up' needs exactly one of --authkey=KEY and --authkey-file=FILE"),
    (["wait-online", "--timeout", "soon"], "invalid timeout 'soon' (seconds, e.g. 30 or 2.5)"),
])
def test_usage_errors(args, text):
    r = meshctl("--socket", "/nonexistent", *args)
    assert r.returncode == 2
    one_error_line(r, text)


def test_help_and_version():
    r = meshctl("--help")
    assert r.returncode == 0 and "meshctl(8)" in r.stdout and "wait-online" in r.stdout
    r = meshctl("--version")
    assert r.returncode == 0 and r.stdout.startswith("meshctl ")
