# SPDX-License-Identifier: LGPL-2.1-or-later
"""Attacks from a local user: what a member of the API socket's group can
do to meshd and to root's meshctl, and what a hostile fstab line can make
mount.mesh hand to mount(8). Each test is an attack that must fail, with
the attacker's view asserted (docs/api.md "Limits", mount.mesh(8),
nss-mesh(8))."""

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from meshlab import (CLIENT_ADDRESS, PYTHON, ControlApi, LogWatcher, NssResolver, binary, fake_public_key,
                     wait_until)
from meshlab import write_nsswitch
from fake_meshd import FakeMeshd

NOBODY = 65534
ATTACKER_UIDS = [NOBODY - i for i in range(8)]     # 8 users of the socket's group
HOLDERS_PER_UID = 40                                # more than the per-user limit (32)
PER_USER_MAX, ROOT_RESERVED, CONNECTIONS_MAX = 32, 16, 256   # src/daemon/api-limits.h
RSS_BOUND_KIB = 20 * 1024                           # growth over the idle value
ROOT_ANSWERS_WITHIN = 2.0                           # seconds, for `meshctl status`

# One attacker process (one uid): opens `holders` connections, each with a
# WaitOnline for a peer that never comes; with "pipeline", first one more
# connection that sends ListPeers calls as fast as meshd takes them and
# never reads. Prints one JSON line of what it saw, keeps everything open
# until stdin says "quit", then prints whether meshd hung up the pipeline.
ATTACKER = r"""
import json, select, socket, sys, time
path, holders, pipeline = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "pipeline"
conns, report = [], {"admitted": 0, "refused": [], "pipelined": 0}

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s

pipe = None
if pipeline:
    pipe = connect()
    pipe.setblocking(False)
    call = json.dumps({"method": "io.meshd.ListPeers"}).encode() + b"\0"
    batch, stalled_since = call * 100, None
    while report["pipelined"] < 200000:
        try:
            n = pipe.send(batch)
        except BlockingIOError:
            n = 0
        except OSError:
            break
        report["pipelined"] += n // len(call)
        batch = batch[n - n % len(call):] if n % len(call) else call * 100
        if n:
            stalled_since = None
            continue
        stalled_since = stalled_since or time.monotonic()
        if time.monotonic() - stalled_since > 2:
            break           # meshd stopped reading us
        time.sleep(0.01)

wait = json.dumps({"method": "io.meshd.WaitOnline", "parameters": {"peers": ["ghost"]}}).encode() + b"\0"
for _ in range(holders):
    s = connect()
    try:
        s.sendall(wait)
    except OSError:
        pass
    conns.append(s)
# meshd accepts in order and answers a refused connection at once: when
# one more connection has its answer, every one before it has been decided.
probe = connect()
probe.settimeout(30)
try:
    probe.sendall(json.dumps({"method": "org.varlink.service.GetInfo"}).encode() + b"\0")
except OSError:
    pass
probe.recv(65536)
probe.close()
for s in conns:
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        report["admitted"] += 1         # WaitOnline is pending: a slot held
        continue
    data = s.recv(65536)
    reply = json.loads(data.split(b"\0")[0]) if data else {}
    report["refused"].append([reply.get("error"), reply.get("parameters", {}).get("message")])
print(json.dumps(report), flush=True)

sys.stdin.readline()
dropped = None
if pipe is not None:
    p = select.poll()
    p.register(pipe, select.POLLRDHUP)
    dropped = any(ev & (select.POLLHUP | select.POLLRDHUP) for _, ev in p.poll(0))
print(json.dumps({"pipeline_dropped": dropped}), flush=True)
"""


def vm_kib(pid: int, field="VmRSS") -> int:
    """VmRSS (now) or VmHWM (the peak so far) of pid, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def as_member(uid: int, gid: int) -> tuple:
    return ("setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups")


@pytest.fixture
def flood_target(lab):
    """alpha, joined, with one peer "ghost" registered that never comes up
    (WaitOnline for it waits), its socket reachable for the group."""
    control = lab.add_control()
    key = control.authkey(reusable=True)
    alpha = lab.add_node("alpha", authkey=key)
    alpha.start()
    alpha.wait_ready(30)
    r = ControlApi(lab.add_host("client", CLIENT_ADDRESS), control).register(key, fake_public_key(), "ghost")
    assert r.status == 200, f"registering ghost: {r.status} {r.body[:200]!r}"
    wait_until(lambda: "ghost" in alpha.peer_names(), 15, what="ghost in alpha's peers")
    os.chmod(lab.short, 0o755)      # the tests' private /tmp dir; /run/meshd is 0755
    return alpha


def test_attack_varlink_flood_by_local_users(lab, flood_target):
    """Eight users of the socket's group each open 40 connections holding
    WaitOnline (320 in all, more than the 256 meshd takes), and one of them
    also pipelines ListPeers calls without ever reading. Each user gets 32
    slots, together no more than 240: the other 16 stay root's, so root's
    `meshctl status` answers within 2 s throughout; the refused connections
    are told io.meshd.TooManyConnections; meshd stops reading the pipeline
    after about a megabyte of unread replies, its memory grows by less than
    20 MiB, and it drops the pipeline with one warning naming the uid.
    When the attackers go, everything works again, for them too."""
    alpha = flood_target
    gid = alpha.socket.stat().st_gid
    pid = alpha.proc.pid
    log = LogWatcher(alpha.log)
    assert alpha.meshctl("status").returncode == 0
    rss_idle = vm_kib(pid)

    attackers = []
    started = time.monotonic()
    try:
        for i, uid in enumerate(ATTACKER_UIDS):
            attackers.append(subprocess.Popen(
                [*as_member(uid, gid), PYTHON, "-c", ATTACKER, str(alpha.socket),
                 str(HOLDERS_PER_UID), "pipeline" if i == len(ATTACKER_UIDS) - 1 else "hold"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            # one after the other: which uid meets which limit is then known
            line = attackers[-1].stdout.readline()
            assert line, f"attacker uid {uid} died: {attackers[-1].stderr.read()}"
            report = json.loads(line)

            # the last one also pipelines, on one more connection, first
            pipeliner = i == len(ATTACKER_UIDS) - 1
            slots_left = CONNECTIONS_MAX - ROOT_RESERVED - PER_USER_MAX * i
            want = min(PER_USER_MAX, slots_left) - (1 if pipeliner else 0)
            assert report["admitted"] == want, f"uid {uid}: {report['admitted']} slots, want {want}"
            assert len(report["refused"]) == HOLDERS_PER_UID - want
            reasons = {tuple(r) for r in report["refused"]}
            want_reason = ("too many connections from this user" if slots_left >= PER_USER_MAX
                           else "the remaining connection slots are reserved for root")
            assert reasons == {("io.meshd.TooManyConnections", want_reason)}, f"uid {uid}: {reasons}"
            if pipeliner:
                # meshd stopped taking calls long before 200,000 (80 MB of replies)
                assert report["pipelined"] < 100000, f"meshd took {report['pipelined']} pipelined calls"
                pipelined = report["pipelined"]

            t = time.monotonic()
            cp = alpha.meshctl("status", timeout=30)
            took = time.monotonic() - t
            assert cp.returncode == 0, f"root's meshctl status with {i + 1} attackers: {cp.stderr.strip()}"
            assert took < ROOT_ANSWERS_WITHIN, f"root's meshctl status took {took:.1f} s"

        rss_attacked = vm_kib(pid, "VmHWM")     # the peak: nothing in between went higher
        assert rss_attacked - rss_idle < RSS_BOUND_KIB, \
            f"meshd's RSS grew from {rss_idle} to {rss_attacked} KiB under the flood"
        log.wait_for(r"Refusing API connection of uid 655\d\d pid \d+: ", 5,
                     what="the warning about refused connections")
        # the pipeline: dropped once its replies stayed unread for 10 s
        log.wait_for(rf"Dropping API connection of uid {ATTACKER_UIDS[-1]} pid \d+: "
                     r"client does not read its replies",
                     20, what="the warning about the never-reading client")
        print(f"pipelined calls taken: {pipelined}; RSS idle {rss_idle} KiB, "
              f"under attack {rss_attacked} KiB")
        refusals = [ln for ln in log.lines if "Refusing API connection" in ln]
        most = int((time.monotonic() - started) / 10) + 1     # one line per 10 s
        assert len(refusals) <= most, f"80 refusals logged in {len(refusals)} lines"

        for a in attackers:
            a.stdin.write("quit\n")
            a.stdin.flush()
        final = json.loads(attackers[-1].stdout.readline())
        assert final["pipeline_dropped"] is True, "the never-reading client was not disconnected"
        for a in attackers:
            assert a.wait(30) == 0, a.stderr.read()
    finally:
        for a in attackers:
            if a.poll() is None:
                a.kill()
                a.wait()

    # Everything still works, for the attackers' users too.
    assert alpha.running
    cp = alpha.meshctl("status")
    assert cp.returncode == 0, cp.stderr
    cp = alpha.exec(*as_member(NOBODY, gid), binary("meshctl"), "--socket", alpha.socket, "peers", "--json")
    assert cp.returncode == 0, f"the attacker's uid after the attack: {cp.stderr.strip()}"
    assert "ghost" in cp.stdout
    assert vm_kib(pid) - rss_idle < RSS_BOUND_KIB


def test_attack_meshctl_reports_refusal(lab, flood_target):
    """A user at its limit runs meshctl: it says meshd refused the
    connection and why, not a garbled protocol error."""
    alpha = flood_target
    gid = alpha.socket.stat().st_gid
    holder = subprocess.Popen(
        [*as_member(NOBODY, gid), PYTHON, "-c", ATTACKER, str(alpha.socket), str(PER_USER_MAX), "hold"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        report = json.loads(holder.stdout.readline() or "{}")
        assert report.get("admitted") == PER_USER_MAX, report
        cp = alpha.exec(*as_member(NOBODY, gid), binary("meshctl"), "--socket", alpha.socket, "status")
        assert cp.returncode != 0
        assert "meshd refused the connection: too many connections from this user" in cp.stderr, cp.stderr
        assert alpha.meshctl("status").returncode == 0     # root is another user
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------------------ mount.mesh

FAKE_MOUNT = """#!/bin/sh
# stands in for mount(8): records its arguments, one per line
for a in "$@"; do printf '%s\\n' "$a"; done > "$FAKE_MOUNT_ARGS"
"""


def run_mount_mesh(tmp_path: Path, *args, socket: Path | None = None):
    """mount.mesh with args, in a private mount namespace where
    /usr/bin/mount is a fake that records what it was called with.
    Returns (completed process, the fake's arguments or None)."""
    fake = tmp_path / "fake-mount"
    fake.write_text(FAKE_MOUNT)
    fake.chmod(0o755)
    record = tmp_path / "mount-args"
    record.unlink(missing_ok=True)
    fstab = tmp_path / "fstab"
    fstab.write_text("")
    env = dict(os.environ, FAKE_MOUNT_ARGS=str(record), LIBMOUNT_FSTAB=str(fstab),
               MESHD_SOCKET=str(socket or tmp_path / "no-meshd.sock"))
    script = 'mount --bind "$1" /usr/bin/mount && shift && exec "$@"'
    cp = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                         str(fake), binary("mount.mesh"), *args],
                        capture_output=True, text=True, env=env, timeout=60)
    return cp, record.read_text().splitlines() if record.exists() else None


@pytest.mark.parametrize("args, fault", [
    # SPEC that mount(8) would read as "-o exec,suid"
    (["-oexec,suid@nas:/e", "/mnt/x", "-t", "mesh.nfs4"], "-oexec,suid@nas:/e: SPEC must not start with '-'"),
    (["--", "-oexec,suid@nas:/e", "/mnt/x", "-t", "mesh.nfs4"], "SPEC must not start with '-'"),
    # DIR that mount(8) would read as --bind
    (["nas:/e", "--bind", "-t", "mesh.nfs4"], "--bind: DIR must not start with '-'"),
    (["nas:/e", "-", "-t", "mesh.nfs4"], "DIR must not start with '-'"),
    # a type list, or a type with options in it
    (["nas:/e", "/mnt/x", "-t", "mesh.nfs4,bind"], "mesh.nfs4,bind: not a file system type"),
    (["nas:/e", "/mnt/x", "-t", "mesh.nfs4 -o exec"], "not a file system type"),
    (["nas:/e", "/mnt/x", "-t", "nfs4"], "nfs4: not a file system type"),
])
def test_attack_mount_mesh_option_looking_arguments(tmp_path, args, fault):
    """Hostile SPEC, DIR or type: mount.mesh exits 1 (usage) with one line
    naming the bad argument, and never runs mount(8)."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a private mount namespace")
    cp, called = run_mount_mesh(tmp_path, *args)
    assert cp.returncode == 1, f"{args}: exit {cp.returncode}, stderr {cp.stderr!r}"
    assert fault in cp.stderr, cp.stderr
    assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    assert called is None, f"mount(8) ran with {called}"


def test_mount_mesh_passes_spec_and_dir_after_double_dash(tmp_path):
    """A good mount: mount(8) gets the peer's address in SPEC, and SPEC and
    DIR after "--", so no address or directory name is ever an option."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a private mount namespace")
    with FakeMeshd(tmp_path / "io.meshd.sock") as meshd:
        cp, called = run_mount_mesh(tmp_path, "nas:/export", "/mnt/x", "-o", "vers=4.2", "-t", "mesh.nfs4",
                                    socket=meshd.path)
    assert cp.returncode == 0, cp.stderr
    assert called == ["-t", "nfs4", "-o", "vers=4.2", "--", "100.64.0.3:/export", "/mnt/x"], called
    assert stat.S_ISREG((tmp_path / "fake-mount").stat().st_mode)


# ------------------------------------------------------------------ nss-mesh

def test_attack_nss_table_cannot_answer_foreign_or_reserved_names(lab):
    """A table that lists names outside the mesh (google.com, a name under
    another domain) or reserved ones (localhost, wpad, isatap) — as a
    hostile control server or a damaged table would have it — makes none of
    them resolve through the module: getent falls through to files and dns
    (none here), never to the table's address. meshd's own table carries
    the domain header that lets the module decide without reading further."""
    control = lab.add_control()
    alpha = lab.add_node("alpha", authkey=control.authkey())
    alpha.start()
    alpha.wait_ready(30)
    real = alpha.runtime_dir / "hosts"
    wait_until(lambda: real.exists() and "\talpha " in real.read_text(), 10, what="alpha's hosts table")
    assert "\n# domain: mesh.internal\n" in real.read_text(), real.read_text()

    conf = write_nsswitch(lab, alpha, True)
    resolver = NssResolver(lab, alpha, conf)
    hostile = lab.dir / "hostile-hosts"
    hostile.write_text("# Mesh names, written by meshd; read by nss-mesh(8). Do not edit.\n"
                       "# domain: mesh.internal\n"
                       "100.64.9.1\tgoogle.com www.example.org\n"
                       "100.64.9.2\tlocalhost localhost.localdomain\n"
                       "100.64.9.3\twpad wpad.mesh.internal\n"
                       "100.64.9.4\tisatap isatap.mesh.internal\n"
                       "100.64.9.5\tnas nas.mesh.internal\n")
    resolver.hosts_file = hostile
    assert resolver.addresses("ahosts", "nas.mesh.internal") == {"100.64.9.5"}   # the module is active
    for name in ("google.com", "www.example.org", "wpad", "wpad.mesh.internal", "isatap",
                 "isatap.mesh.internal", "localhost.localdomain"):
        got = resolver.addresses("ahosts", name)
        assert not any(a.startswith("100.64.9.") for a in got), f"{name} resolved from the table: {got}"
    # localhost: /etc/hosts ("files", before "mesh") answers, never the table
    got = resolver.addresses("ahosts", "localhost")
    assert got and not any(a.startswith("100.64.9.") for a in got), got
    cp = resolver.getent("hosts", "100.64.9.1")
    assert cp.returncode != 0, f"reverse lookup named a foreign name: {cp.stdout!r}"
