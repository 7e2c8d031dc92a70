# SPDX-License-Identifier: LGPL-2.1-or-later
"""The shipped systemd units and meshd-wait-online, without a running systemd.

Units: the files meson would install (`meson introspect --installed` of the
build, copied into a DESTDIR-like root together with the host's own systemd
units), checked with `systemd-analyze verify --root=` and
`systemd-analyze security --offline=true`, and a boot transaction with an
NFS mount over the mesh checked for ordering cycles.

meshd-wait-online: against the fake meshd of fake_meshd.py.

MESHLAB_BUILD_DIR names the build (default build/), MESHD_WAIT_ONLINE the
binary (default BUILD/src/wait-online/meshd-wait-online). Tests skip when
the build, the binary or systemd-analyze is missing."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_meshd import FakeMeshd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("MESHLAB_BUILD_DIR", ROOT / "build"))
WAIT_ONLINE = Path(os.environ.get("MESHD_WAIT_ONLINE",
                                  BUILD_DIR / "src" / "wait-online" / "meshd-wait-online"))
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
HOST_UNIT_DIR = Path("/usr/lib/systemd/system")

UNITS = ["meshd.service", "meshd-control.service", "mesh-online.target",
         "meshd-wait-online.service", "meshd-wait-online@.service"]
# meshd.service pays 0.2 for CAP_CHOWN, which gives the API socket to group
# meshd (units/meshd.service.in); tests/vm/test_systemd.py holds the same line
MAX_EXPOSURE = {"meshd.service": 2.2, "meshd-control.service": 2.0}
SANDBOXED = list(MAX_EXPOSURE)

needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
needs_wait_online = pytest.mark.skipif(not os.access(WAIT_ONLINE, os.X_OK),
                                       reason=f"{WAIT_ONLINE} is not built")


# --- the installed tree -------------------------------------------------------

def install_plan():
    """{built file: installed path}, as `meson install` would do it."""
    if not (BUILD_DIR / "meson-private" / "coredata.dat").exists():
        pytest.skip(f"{BUILD_DIR} is not a configured meson build")
    out = subprocess.run(["meson", "introspect", "--installed", str(BUILD_DIR)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def exec_paths(unit_text):
    """Absolute program paths of the Exec*= lines, prefixes (@-:+!) stripped."""
    paths = []
    for line in unit_text.splitlines():
        m = re.match(r"Exec\w+=\s*[@\-:+!]*(\S+)", line)
        if m and m.group(1).startswith("/"):
            paths.append(m.group(1))
    return paths


@pytest.fixture(scope="module")
def installed():
    """A root with our installed files and the host's systemd units: what a
    Debian system looks like after `meson install`. Yields (root, unit dir)."""
    plan = install_plan()
    with tempfile.TemporaryDirectory(prefix="meshd-units-") as d:
        root = Path(d)
        ours = set()
        unit_dir = None
        for src, dst in plan.items():
            ours.add(dst)
            if Path(dst).name in UNITS:
                unit_dir = root / Path(dst).parent.relative_to("/")
            if not os.path.exists(src):
                continue        # not built: verify then reports what misses it
            target = root / dst.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=True)
        assert unit_dir is not None, "meson installs no units"
        shutil.copytree(HOST_UNIT_DIR, root / HOST_UNIT_DIR.relative_to("/"),
                        symlinks=True, dirs_exist_ok=True)
        # Tools from the base system that our units run (/bin/kill, ...):
        # taken from the host, but never one of our own files.
        for unit in UNITS:
            for path in exec_paths((unit_dir / unit).read_text()):
                if path not in ours and os.path.exists(path):
                    target = root / path.lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target, follow_symlinks=True)
        yield root, unit_dir


def analyze(*args, cwd=None):
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@needs_analyze
def test_every_unit_is_installed(installed):
    root, unit_dir = installed
    assert sorted(p.name for p in unit_dir.iterdir() if p.name in UNITS) == sorted(UNITS)


@needs_analyze
@pytest.mark.parametrize("unit", [u.replace("@.", "@nas.") for u in UNITS])
def test_verify(installed, unit):
    root, unit_dir = installed
    r = analyze("verify", "--man=no", f"--root={root}", unit, cwd=unit_dir)
    assert (r.returncode, r.stdout + r.stderr) == (0, "")


@needs_analyze
def test_unit_paths_point_at_installed_binaries(installed):
    root, unit_dir = installed
    for unit in UNITS:
        for path in exec_paths((unit_dir / unit).read_text()):
            assert (root / path.lstrip("/")).is_file(), f"{unit}: {path} is not installed"
    text = (unit_dir / "meshd-wait-online@.service").read_text()
    assert "--peer=%I" in text and "${MESHD_WAIT_ONLINE_TIMEOUT}" in text


@needs_analyze
@pytest.mark.parametrize("unit", SANDBOXED)
def test_security_exposure(installed, unit):
    root, unit_dir = installed
    r = analyze("security", "--offline=true", "--no-pager", f"--root={root}", unit, cwd=unit_dir)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(m.group(0))
    assert float(m.group(1)) <= MAX_EXPOSURE[unit], r.stdout


def enable(root, target, unit, source):
    wants = root / "etc/systemd/system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit).symlink_to(source)


@needs_analyze
@pytest.mark.parametrize("variant", ["mesh-online", "peer", "cycle"])
def test_boot_with_mesh_mount_has_no_ordering_cycle(installed, variant):
    """multi-user.target with meshd enabled (and the [Install] links that
    `systemctl enable meshd` makes) plus an NFS mount the way the fstab
    generator hooks it up. The 'cycle' variant proves the check can fail."""
    root, unit_dir = installed
    etc = root / "etc/systemd/system"
    shutil.rmtree(etc, ignore_errors=True)
    rel = "/" + str(unit_dir.relative_to(root))
    enable(root, "multi-user.target", "meshd.service", f"{rel}/meshd.service")
    enable(root, "mesh-online.target", "meshd-wait-online.service",
           f"{rel}/meshd-wait-online.service")
    enable(root, "multi-user.target", "remote-fs.target", "/usr/lib/systemd/system/remote-fs.target")
    deps = {"mesh-online": "Wants=mesh-online.target\nAfter=mesh-online.target\n",
            "peer": "Requires=meshd-wait-online@nas.service\n"
                    "After=meshd-wait-online@nas.service mesh-online.target\n",
            "cycle": "Wants=mesh-online.target\nAfter=mesh-online.target\n"}[variant]
    (etc / "mnt-a.mount").write_text(
        "[Unit]\nSourcePath=/etc/fstab\nBefore=remote-fs.target\n" + deps +
        "[Mount]\nWhat=nas.mesh.internal:/export\nWhere=/mnt/a\nType=nfs4\nOptions=_netdev\n")
    enable(root, "remote-fs.target", "mnt-a.mount", "/etc/systemd/system/mnt-a.mount")
    if variant == "cycle":
        (etc / "meshd.service.d").mkdir()
        (etc / "meshd.service.d/cycle.conf").write_text("[Unit]\nAfter=remote-fs.target\n")

    out = ""
    for unit in ("multi-user.target", "remote-fs.target", "mnt-a.mount"):
        r = analyze("verify", "--man=no", f"--root={root}", unit, cwd=root)
        out += r.stdout + r.stderr
        assert r.returncode == 0, out
    if variant == "cycle":
        assert "ordering cycle" in out
    else:
        assert out == ""


# --- meshd-wait-online ---------------------------------------------------------

def wait_online(*args, env=None, timeout=30):
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("MESHD_SOCKET", "JOURNAL_STREAM", "MESHD_LOG_LEVEL")}
    full_env.update(env or {})
    start = time.monotonic()
    r = subprocess.run([str(WAIT_ONLINE), *map(str, args)], env=full_env,
                       capture_output=True, text=True, timeout=timeout)
    r.elapsed = time.monotonic() - start
    return r


@pytest.fixture
def sockdir():
    # Not tmp_path: a Unix socket path must stay under 108 bytes.
    with tempfile.TemporaryDirectory(prefix="wait-online-") as d:
        yield Path(d)


@pytest.fixture
def meshd(sockdir):
    with FakeMeshd(sockdir / "io.meshd.sock") as fake:
        yield fake


@needs_wait_online
def test_online_exits_0_and_sends_the_request(meshd):
    r = wait_online("--socket", meshd.path, "--peer", "nas", "--timeout", "30")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    method, params = meshd.calls[-1]
    assert method == "io.meshd.WaitOnline"
    assert params["peers"] == ["nas"]
    assert "any" not in params
    assert 29_000_000 < params["timeout_usec"] <= 30_000_000


@needs_wait_online
def test_policy_wait_sends_no_peers(meshd):
    meshd.peers[1]["reachable"] = True
    r = wait_online("--socket", meshd.path)
    assert r.returncode == 0, r.stderr
    method, params = meshd.calls[-1]
    assert "peers" not in params
    assert 119_000_000 < params["timeout_usec"] <= 120_000_000   # the default


@needs_wait_online
def test_any_and_socket_from_environment(meshd):
    r = wait_online("--peer=nas", "--peer=backup", "--any", "--timeout=5s",
                    env={"MESHD_SOCKET": str(meshd.path)})
    assert r.returncode == 0, r.stderr
    assert meshd.calls[-1][1]["peers"] == ["nas", "backup"]
    assert meshd.calls[-1][1]["any"] is True


@needs_wait_online
def test_timeout_zero_means_forever(meshd):
    assert wait_online("--socket", meshd.path, "--peer=nas", "--timeout=0").returncode == 0
    assert meshd.calls[-1][1]["timeout_usec"] == 0


@needs_wait_online
def test_timeout_names_the_peer_and_the_reason(meshd):
    meshd.handlers["io.meshd.WaitOnline"] = lambda p: meshd.fail(
        "io.meshd.Timeout", unreachable=["nas"], message="no probe reply")
    r = wait_online("--socket", meshd.path, "--peer=nas", "--timeout=30")
    assert r.returncode == 1
    assert r.stderr == "meshd-wait-online: nas: not reachable within 30s (no probe reply)\n"


@needs_wait_online
def test_timeout_of_the_fake_default_handler(meshd):
    """The fake's own WaitOnline: backup is unreachable there."""
    r = wait_online("--socket", meshd.path, "--peer=nas", "--peer=backup", "--timeout=2")
    assert r.returncode == 1
    assert r.stderr == "meshd-wait-online: backup: not reachable within 2s (not online in time)\n"


@needs_wait_online
def test_not_joined(meshd):
    meshd.handlers["io.meshd.WaitOnline"] = lambda p: meshd.fail(
        "io.meshd.NotJoined", message="this node has not joined a mesh")
    r = wait_online("--socket", meshd.path)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "not joined to a mesh" in r.stderr


@needs_wait_online
def test_unknown_peer(meshd):
    r = wait_online("--socket", meshd.path, "--peer=nope")
    assert (r.returncode, r.stderr) == (1, "meshd-wait-online: nope: unknown peer\n")


@needs_wait_online
def test_waits_for_the_socket_to_appear(sockdir):
    path = sockdir / "io.meshd.sock"
    env = {k: v for k, v in os.environ.items() if k not in ("MESHD_SOCKET", "JOURNAL_STREAM")}
    env["MESHD_LOG_LEVEL"] = "debug"
    start = time.monotonic()
    proc = subprocess.Popen([str(WAIT_ONLINE), "--socket", str(path), "--peer=nas", "--timeout=10"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fake = None
    try:
        # it found no socket and says it waits (it exits by itself within 10 s)
        first = proc.stderr.readline()
        assert "meshd is not listening on" in first and "waiting" in first, first
        # the socket stays away for a second of wait-online's time, then appears
        time.sleep(1.0)
        fake = FakeMeshd(path).__enter__()
        stdout, stderr = proc.communicate(timeout=30)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if fake:
            fake.__exit__(None, None, None)
    assert proc.returncode == 0, stderr     # (debug lines on stderr: asked for them)
    assert 1.0 < elapsed < 10
    # Only the time left goes to meshd.
    assert fake.calls[-1][1]["timeout_usec"] < 9_000_000


@needs_wait_online
def test_stale_socket_counts_as_not_running_yet(sockdir):
    import socket
    path = sockdir / "io.meshd.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))           # bound, never listening: ECONNREFUSED
    s.close()
    r = wait_online("--socket", path, "--timeout=0.5")
    assert r.returncode == 1
    assert r.stderr == f"meshd-wait-online: meshd is not running: nothing answers on {path} (waited 0.5s)\n"


@needs_wait_online
def test_socket_never_appears(sockdir):
    path = sockdir / "io.meshd.sock"
    r = wait_online("--socket", path, "--peer=nas", "--timeout=1")
    assert r.returncode == 1
    assert r.stderr == f"meshd-wait-online: meshd is not running: nothing answers on {path} (waited 1s)\n"
    assert 0.9 < r.elapsed < 3


@needs_wait_online
@pytest.mark.parametrize("args, text", [
    (["--timeout=soon"], "Invalid --timeout=soon"),
    (["--timeout=-1"], "Invalid --timeout=-1"),
    (["--any"], "--any needs --peer="),
    (["nas"], "Unexpected argument 'nas'"),
    (["--bogus"], "Unknown option --bogus"),
    (["--peer"], "needs an argument"),
    (["--peer=nas/2"], "systemd-escape --template=meshd-wait-online@.service"),
])
def test_usage_errors(args, text):
    r = wait_online(*args)
    assert r.returncode == 1
    assert r.stderr.startswith("meshd-wait-online: ") and text in r.stderr
    assert r.stderr.count("\n") == 1


@needs_wait_online
def test_help_and_version():
    r = wait_online("--help")
    assert r.returncode == 0 and "meshd-wait-online(8)" in r.stdout and "--peer=NAME" in r.stdout
    r = wait_online("--version")
    assert r.returncode == 0 and r.stdout.startswith("meshd-wait-online ")
