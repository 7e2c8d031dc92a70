# SPDX-License-Identifier: LGPL-2.1-or-later
"""meshlab: a control server and meshd nodes in network namespaces.

    lab = Lab(tmp_path)                  # underlay: one bridge namespace
    control = lab.add_control()          # 192.0.2.1, init + serve, READY seen
    key = control.authkey(reusable=True)
    alpha = lab.add_node("alpha", authkey=key)
    alpha.start(); alpha.wait_ready(20)
    alpha.ping("100.64.0.3")             # real ICMP inside alpha's namespace
    lab.close()                          # kills everything, deletes namespaces

Every Lab has a random 4-hex run id. Namespaces are "mshl<rid>-<host>",
WireGuard interfaces "m<rid><letter>" (wireguard-go's UAPI socket directory
/var/run/wireguard is shared by all namespaces, so names must differ). A
live Lab registers "<rid> → pid" under /run/meshlab; sweep_stale() removes
namespaces, wireguard-go processes and sockets of runs whose owner is dead,
and never touches anything else.

Python 3.11 standard library only. Also usable as a script:
    python3 meshlab.py fake-control --listen IP:PORT --cert C --key K --mode M
runs the fake HTTPS control server used by the error tests.
"""

from __future__ import annotations

import atexit
import base64
import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("MESHLAB_BUILD_DIR", REPO_ROOT / "build"))
REGISTRY_DIR = Path("/run/meshlab")
WG_SOCKET_DIR = Path("/var/run/wireguard")
NS_PREFIX = "mshl"
NS_RE = re.compile(rf"^{NS_PREFIX}([0-9a-f]{{4}})-")
IFNAME_RE = re.compile(r"^m([0-9a-f]{4})[a-z]$")
MESH_V4 = ipaddress.ip_network("100.64.0.0/10")
UNDERLAY = "192.0.2"          # TEST-NET-1; control .1, nodes .10 and up
CONTROL_PORT = 8443
HUB_PORT = 41640             # HUB_PORT_DEFAULT
PYTHON = "/usr/bin/python3"

_live_labs: list["Lab"] = []


# --------------------------------------------------------------- helpers

def run(argv, *, check=True, timeout=60, input=None, env=None):
    """subprocess.run with text capture; check=True raises with output."""
    cp = subprocess.run([str(a) for a in argv], capture_output=True, text=True, errors="replace",
                        timeout=timeout, input=input, env=env)
    if check and cp.returncode != 0:
        raise RuntimeError(f"{shlex.join(cp.args)} exited {cp.returncode}\n"
                           f"stdout: {cp.stdout.strip()}\nstderr: {cp.stderr.strip()}")
    return cp


def wait_until(predicate, timeout, *, interval=0.05, what="condition"):
    """Polls predicate() until it returns a true value (returned) or raises
    TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def binary(name: str) -> Path:
    """Path of a built binary; a missing one is an error, never a skip."""
    sub = {"meshd-control": "control", "meshd": "daemon", "meshctl": "ctl",
           "mount.mesh": "mount-helper"}[name]
    path = BUILD_DIR / "src" / sub / name
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is missing: build it first (tools/test "
                                f"does; or meson setup build && ninja -C build)")
    return path


def netns_usable() -> str | None:
    """None when we can create network namespaces, else the reason why not."""
    if os.geteuid() != 0:
        return "integration tests need root (network namespaces)"
    if shutil.which("ip") is None:
        return "iproute2 'ip' not found"
    name = f"{NS_PREFIX}probe{os.getpid()}"
    cp = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if cp.returncode != 0:
        return f"'ip netns add' does not work here: {cp.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (ours, not yet reaped) is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _wireguard_go_ifname(pid: int) -> str | None:
    argv = _cmdline(pid)
    if argv and os.path.basename(argv[0]) == "wireguard-go":
        names = [a for a in argv[1:] if not a.startswith("-")]
        return names[-1] if names else None
    return None


def _kill_pids(pids, grace=5.0):
    """SIGTERM, wait up to grace seconds, then SIGKILL what is left."""
    pids = [p for p in pids if p != os.getpid()]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _remove_wg_socket(ifname: str):
    sock = WG_SOCKET_DIR / f"{ifname}.sock"
    try:
        sock.unlink()
    except FileNotFoundError:
        pass


def _run_alive(rid: str) -> bool:
    try:
        pid = int((REGISTRY_DIR / rid).read_text().strip())
    except (OSError, ValueError):
        return False
    return _pid_alive(pid)


def sweep_stale():
    """Removes what aborted runs left behind: our namespaces, wireguard-go
    processes and UAPI sockets whose run id has no live owner."""
    cp = run(["ip", "netns", "list"], check=False)
    for line in cp.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NS_RE.match(name)
        if m and not _run_alive(m.group(1)):
            Netns(name).destroy()
    for pid_dir in Path("/proc").glob("[0-9]*"):
        ifname = _wireguard_go_ifname(int(pid_dir.name))
        m = IFNAME_RE.match(ifname or "")
        if m and not _run_alive(m.group(1)):
            _kill_pids([int(pid_dir.name)], grace=2)
    if WG_SOCKET_DIR.is_dir():
        for sock in WG_SOCKET_DIR.glob("*.sock"):
            m = IFNAME_RE.match(sock.stem)
            if m and not _run_alive(m.group(1)):
                _remove_wg_socket(sock.stem)
    if REGISTRY_DIR.is_dir():
        for entry in REGISTRY_DIR.iterdir():
            if not _run_alive(entry.name):
                entry.unlink(missing_ok=True)


def spki_pin(key_pem: Path) -> str:
    """sha256//BASE64 pin of a private key's public half (curl's format)."""
    der = subprocess.run(["openssl", "pkey", "-in", str(key_pem), "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


# --------------------------------------------------------------- sd_notify

@dataclasses.dataclass
class NotifyMessage:
    t: float            # time.monotonic() when it arrived
    wall: float         # time.time() when it arrived
    fields: dict        # {"READY": "1", "STATUS": "…"}

    def __repr__(self):
        return f"<{self.wall:.3f} {self.fields}>"


class NotifyListener:
    """The NOTIFY_SOCKET a daemon sends READY=1/STATUS=… to, owned by the test."""

    def __init__(self, path: Path):
        self.path = path
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[NotifyMessage] = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True,
                                       name=f"notify:{path}")
        self.thread.start()

    def _loop(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.cond:
                self.messages.append(NotifyMessage(time.monotonic(), time.time(), fields))
                self.cond.notify_all()

    def wait_for(self, key, value=None, *, since=0.0, timeout=10.0):
        """First message after `since` (monotonic) carrying key (=value);
        None when none arrives within timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages:
                    if m.t >= since and key in m.fields and (value is None or m.fields[key] == value):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def since(self, t):
        with self.cond:
            return [m for m in self.messages if m.t >= t]

    def close(self):
        self.closed = True
        self.sock.close()
        self.path.unlink(missing_ok=True)


@dataclasses.dataclass
class Ready:
    """When READY=1 arrived, relative to the daemon's start."""
    t: float                     # monotonic time of READY=1
    wall: float
    after_start: float           # seconds from start() to READY=1
    message: NotifyMessage       # the message carrying READY=1
    messages: list               # every notify message since start(), in order

    @property
    def status(self) -> str:
        """The STATUS= in force at READY=1 (same message or the last before)."""
        text = ""
        for m in self.messages:
            if m.t > self.t:
                break
            text = m.fields.get("STATUS", text)
        return text


# --------------------------------------------------------------- namespaces

class Netns:
    def __init__(self, name: str):
        self.name = name

    def create(self):
        run(["ip", "netns", "add", self.name])
        self.ip("link", "set", "lo", "up")
        return self

    def ip(self, *args, check=True):
        return run(["ip", "-n", self.name, *args], check=check)

    def exec(self, *argv, check=False, timeout=60, env=None, input=None):
        return run(["ip", "netns", "exec", self.name, *argv], check=check,
                   timeout=timeout, env=env, input=input)

    def popen(self, argv, *, log: Path, env=None):
        with open(log, "ab") as f:
            f.write(f"=== meshlab {time.strftime('%H:%M:%S')}: "
                    f"{shlex.join(str(a) for a in argv)}\n".encode())
            f.flush()
            # ip netns exec execs the command: the pid is the daemon's own.
            return subprocess.Popen(["ip", "netns", "exec", self.name, *map(str, argv)],
                                    stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)

    def pids(self) -> list[int]:
        cp = run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in cp.stdout.split()] if cp.returncode == 0 else []

    def destroy(self):
        """Kills everything inside, removes the UAPI sockets of its
        wireguard-go processes, deletes the namespace."""
        pids = self.pids()
        ifnames = [n for n in (_wireguard_go_ifname(p) for p in pids) if n]
        _kill_pids(pids)
        for ifname in ifnames:
            _remove_wg_socket(ifname)
        run(["ip", "netns", "del", self.name], check=False)


# --------------------------------------------------------------- daemons

class Daemon:
    """A foreground process in a namespace with its own NOTIFY_SOCKET."""

    def __init__(self, lab: "Lab", ns: Netns, name: str, log: Path, notify_path: Path):
        self.lab, self.ns, self.name, self.log = lab, ns, name, log
        self.notify = NotifyListener(notify_path)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.started_wall = 0.0

    def argv(self) -> list:
        raise NotImplementedError

    def env(self):
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = str(self.notify.path)
        env.setdefault("MESHD_LOG_LEVEL", "debug")
        env.setdefault("MESHD_LOG_TIMESTAMPS", "1")
        # never the host's system bus: a meshd in a test must not register
        # its mesh DNS with the host's systemd-resolved (test_resolved.py
        # gives it a bus of its own)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/meshlab-no-system-bus"
        return env

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.running, f"{self.name} already running"
        self.started_at, self.started_wall = time.monotonic(), time.time()
        self.proc = self.ns.popen(self.argv(), log=self.log, env=self.env())
        return self

    def wait_ready(self, timeout=20.0, *, check=True) -> Ready | None:
        """Waits for READY=1 sent after the last start(). Raises (check) or
        returns None when it does not come in time."""
        since = self.started_at
        m = self.notify.wait_for("READY", "1", since=since, timeout=timeout)
        if m is None:
            if check:
                alive = "running" if self.running else f"exited with {self.proc.returncode}"
                raise TimeoutError(f"{self.name}: no READY=1 within {timeout:g} s ({alive}); "
                                   f"notify messages: {self.notify.since(since)}")
            return None
        return Ready(m.t, m.wall, m.t - self.started_at, m, self.notify.since(since))

    def _signal_and_wait(self, sig, timeout):
        if not self.running:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self, timeout=10.0):
        """SIGTERM, SIGKILL after timeout seconds."""
        self._signal_and_wait(signal.SIGTERM, timeout)
        return self.proc.returncode if self.proc else None

    def kill(self):
        self._signal_and_wait(signal.SIGKILL, 5)

    def restart(self):
        self.stop()
        return self.start()

    # Per-request debug lines (every meshctl call, every long-poll) would
    # crowd the events that explain a failure out of the tail.
    CHATTY = re.compile(r"API (call|connection)|Control request started|127\.0\.0\.1:\d+ ")

    def log_tail(self, lines=40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join([line for line in text if not self.CHATTY.search(line)][-lines:])


class Control(Daemon):
    """meshd-control: init at creation, serve on start()."""

    def __init__(self, lab, ns, address, port=CONTROL_PORT, *, hub=True, hub_args=()):
        d = lab.dir / "control"
        d.mkdir(parents=True, exist_ok=True)
        super().__init__(lab, ns, "control", d / "meshd-control.log",
                         lab.short / "control.notify")
        self.address, self.port = address, port
        self.state_dir = d / "state"
        self.state_dir.mkdir(exist_ok=True)
        self.url = f"https://{address}:{port}"
        self.pin = None
        # the hub's wireguard-go socket is in the shared /var/run/wireguard:
        # a per-lab name, in the form sweep_stale() knows
        self.hub = hub
        self.hub_interface = f"m{lab.rid}z"
        self.hub_args = list(hub_args)
        # the lab's PostgreSQL database (Lab.use_postgresql()), else the state dir's file
        url = lab.database_url()
        self.database_args = ["--database", url] if url else []

    def command(self, *args, check=True, timeout=30):
        return self.ns.exec(binary("meshd-control"), "--state-dir", self.state_dir, *self.database_args,
                            *args, check=check, timeout=timeout)

    def init(self) -> str:
        cp = self.command("init", "--url", self.url)
        pins = [line.strip() for line in cp.stdout.splitlines() if line.strip().startswith("sha256//")]
        if not pins:
            raise RuntimeError(f"meshd-control init printed no sha256// pin:\n{cp.stdout}{cp.stderr}")
        self.pin = pins[0]
        return self.pin

    def argv(self):
        hub = (["--hub-interface", self.hub_interface, "--hub-backend", "userspace", *self.hub_args]
               if self.hub else ["--no-hub"])
        return [binary("meshd-control"), "--state-dir", self.state_dir, *self.database_args,
                "serve", "--listen", f"{self.address}:{self.port}", *hub]

    def authkey(self, *, reusable=False, expires=None) -> "AuthKey":
        args = ["authkey", "create"]
        if reusable:
            args.append("--reusable")
        if expires:
            args += ["--expires", expires]
        lines = self.command(*args).stdout.splitlines()
        if len(lines) < 2:
            raise RuntimeError(f"authkey create printed {lines!r}, want key + meshctl line")
        return AuthKey(lines[0].strip(), lines[1].strip())

    def nodes(self) -> list[dict]:
        data = json.loads(self.command("nodes", "list", "--json").stdout)
        return data["nodes"] if isinstance(data, dict) else data

    def remove_node(self, name):
        return self.command("nodes", "remove", name)

    # the files a state directory held before the store kept the mesh's
    # secrets (src/control/mesh-secrets.h): setting, and which half
    SECRET_FILES = {"tls-key.pem": ("tls_pem", 0), "tls-cert.pem": ("tls_pem", 1),
                    "ca-key.pem": ("ca_pem", 0), "ca-cert.pem": ("ca_pem", 1)}

    def setting(self, key: str) -> str | None:
        """A setting of the database, read as another process would."""
        if self.lab.pg is not None:
            assert "'" not in key
            rows = self.lab.pg.psql(f"SELECT value FROM settings WHERE key = '{key}'",
                                    dbname=self.lab.pg_database)
            return rows[:-1] if rows.endswith("\n") else (rows or None)
        import sqlite3
        db = sqlite3.connect(f"file:{self.state_dir / 'control.db'}?mode=ro", uri=True, timeout=10)
        try:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        finally:
            db.close()
        return row[0] if row else None

    def secret_file(self, name: str) -> Path:
        """NAME of SECRET_FILES as a file (0600, in the lab's directory) for
        the tools that want one: the text the store keeps."""
        setting, half = self.SECRET_FILES[name]
        text = self.setting(setting)
        assert text, f"the database holds no {setting}"
        cut = text.index("-----BEGIN CERTIFICATE-----")
        d = self.lab.dir / "control-secrets"
        d.mkdir(mode=0o700, exist_ok=True)
        path = d / name
        path.touch(mode=0o600)
        path.write_text(text[cut:] if half else text[:cut])
        return path


class ControlReplica(Control):
    """A second `meshd-control serve` on the primary's database (its state
    directory, on the shared file system): no init of its own, its own
    namespace, address, hub interface and hub endpoint (docs/replicas.md)."""

    def __init__(self, lab, ns, address, primary: Control, name: str, hub_interface: str):
        d = lab.dir / name
        d.mkdir(parents=True, exist_ok=True)
        Daemon.__init__(self, lab, ns, name, d / "meshd-control.log", lab.short / f"{name}.notify")
        self.address, self.port = address, primary.port
        self.state_dir = primary.state_dir
        self.url = f"https://{address}:{self.port}"
        self.pin = primary.pin
        self.database_args = list(primary.database_args)
        self.hub = primary.hub
        self.hub_interface = hub_interface
        self.hub_args = list(primary.hub_args)
        if self.hub:
            self.hub_args += ["--hub-endpoint", f"{address}:{HUB_PORT}"]

    def init(self) -> str:
        raise RuntimeError("a replica serves the primary's database: no init")


@dataclasses.dataclass
class AuthKey:
    key: str
    up_command: str         # "meshctl up --server URL --authkey KEY --pin PIN"

    def __str__(self):
        return self.key


@dataclasses.dataclass
class WgPeer:
    public_key: str
    endpoint: str | None
    allowed_ips: list
    latest_handshake: int
    rx: int
    tx: int


@dataclasses.dataclass
class WgDevice:
    public_key: str
    listen_port: int
    peers: dict             # public key → WgPeer


class Node(Daemon):
    """One meshd in its own namespace."""

    def __init__(self, lab, ns, name, index, address, *, hostname=None, policy="any",
                 required_peers=(), timeout_sec=None, authkey=None, control=None,
                 keep_interface=None, extra_mesh=None):
        d = lab.dir / name
        d.mkdir(parents=True, exist_ok=True)
        rt = lab.short / name
        rt.mkdir(parents=True, exist_ok=True)
        super().__init__(lab, ns, name, d / "meshd.log", rt / "notify")
        self.index, self.address = index, address
        self.hostname = hostname or name
        self.interface = f"m{lab.rid}{chr(ord('a') + index)}"
        self.state_dir = d / "state"
        self.state_dir.mkdir(exist_ok=True)
        self.runtime_dir = rt
        self.config = d / "meshd.conf"
        self.socket = rt / "io.meshd.sock"
        mesh = {"Hostname": self.hostname, "Interface": self.interface,
                "ListenPort": "41641", "Backend": "userspace"}
        if control is not None:
            mesh["ControlURL"] = control.url
            mesh["ControlPin"] = control.pin
        if authkey is not None:
            keyfile = d / "authkey"
            keyfile.write_text(f"{authkey}\n")
            keyfile.chmod(0o600)
            mesh["AuthKeyFile"] = str(keyfile)
        if keep_interface is not None:
            mesh["KeepInterface"] = "yes" if keep_interface else "no"
        mesh.update(extra_mesh or {})
        online = {"Policy": policy}
        if required_peers:
            online["RequiredPeers"] = " ".join(required_peers)
        if timeout_sec is not None:
            online["TimeoutSec"] = str(timeout_sec)
        text = "[Mesh]\n" + "".join(f"{k}={v}\n" for k, v in mesh.items())
        text += "\n[Online]\n" + "".join(f"{k}={v}\n" for k, v in online.items())
        self.config.write_text(text)

    def argv(self):
        return [binary("meshd"), "--config", self.config, "--state-dir", self.state_dir,
                "--runtime-dir", self.runtime_dir]

    # --- talking to it
    def exec(self, *argv, check=False, timeout=60, env=None, input=None):
        return self.ns.exec(*argv, check=check, timeout=timeout, env=env, input=input)

    def meshctl(self, *args, check=False, timeout=60):
        return self.exec(binary("meshctl"), "--socket", self.socket, *args,
                         check=check, timeout=timeout)

    def status(self) -> dict:
        """io.meshd Status of this node (`meshctl status --json` → "self")."""
        data = json.loads(self.meshctl("status", "--json", check=True).stdout)
        return data.get("self", data)

    def peers(self) -> list[dict]:
        data = json.loads(self.meshctl("peers", "--json", check=True).stdout)
        return data["peers"] if isinstance(data, dict) else data

    def peer_names(self) -> set:
        return {p["name"] for p in self.peers()}

    def wait_api(self, timeout=10.0):
        """Until `meshctl status --json` answers."""
        def ok():
            return self.socket.exists() and self.meshctl("status", "--json").returncode == 0
        wait_until(ok, timeout, interval=0.1, what=f"{self.name}'s API socket")

    def ping(self, address, *, count=1, wait=1):
        """Real ICMP echo from inside the namespace."""
        return self.exec("ping", "-n", "-c", str(count), "-W", str(wait), str(address),
                         timeout=count * wait + 10)

    def can_ping(self, address, *, within=10.0) -> bool:
        try:
            wait_until(lambda: self.ping(address).returncode == 0, within, interval=0.2,
                       what=f"ping {self.name} → {address}")
            return True
        except TimeoutError:
            return False

    # --- breaking its underlay (nftables tables of our own, priority -300)

    def cut_udp_to(self, address, port=41641):
        """Drops UDP between this node and address's WireGuard port, both
        ways: the direct path to that peer dies, nothing else changes."""
        self.ns.exec("nft", "-f", "-", check=True, input=f"""
            table inet meshlab_cut {{
                chain output {{ type filter hook output priority -300; policy accept;
                               ip daddr {address} udp dport {port} drop; }}
                chain input {{ type filter hook input priority -300; policy accept;
                              ip saddr {address} udp sport {port} drop; }}
            }}""")

    def block_udp(self):
        """Drops every UDP datagram on the underlay eth0 (loopback, where
        meshd's end of the TLS relay lives, and the tunnel still work),
        like a network that passes only TCP."""
        self.ns.exec("nft", "-f", "-", check=True, input="""
            table inet meshlab_noudp {
                chain output { type filter hook output priority -300; policy accept;
                               oifname "eth0" meta l4proto udp drop; }
                chain input { type filter hook input priority -300; policy accept;
                              iifname "eth0" meta l4proto udp drop; }
            }""")

    def restore_udp(self):
        """Undoes cut_udp_to() and block_udp(), whichever are in place."""
        for table in ("meshlab_cut", "meshlab_noudp"):
            self.ns.exec("nft", "delete", "table", "inet", table)

    def wg_show(self) -> WgDevice | None:
        """`wg show IFNAME dump`, parsed; None when the device is absent."""
        cp = self.exec("wg", "show", self.interface, "dump")
        if cp.returncode != 0:
            return None
        lines = [line.split("\t") for line in cp.stdout.splitlines() if line]
        _priv, pub, port, _fwmark = lines[0][:4]
        peers = {}
        for f in lines[1:]:
            allowed = [] if f[3] == "(none)" else f[3].split(",")
            peers[f[0]] = WgPeer(f[0], None if f[2] == "(none)" else f[2], allowed,
                                 int(f[4]), int(f[5]), int(f[6]))
        return WgDevice(pub, int(port), peers)

    def state_snapshot(self) -> dict:
        """{relative path: (mode, bytes)} of the whole state dir."""
        snap = {}
        for p in sorted(self.state_dir.rglob("*")):
            rel = str(p.relative_to(self.state_dir))
            if p.is_file():
                snap[rel] = (p.stat().st_mode, p.read_bytes())
            else:
                snap[rel] = (p.stat().st_mode, None)
        return snap


# --------------------------------------------------------------- the lab

class Lab:
    """An underlay bridge namespace, the hosts on it, and their clean-up."""

    control_address = f"{UNDERLAY}.1"     # NatLab: on the public segment

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
        while True:
            self.rid = secrets.token_hex(2)
            try:
                fd = os.open(REGISTRY_DIR / self.rid, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                continue
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        # Unix socket paths are limited to 108 bytes: runtime dirs and notify
        # sockets live in a short directory, logs and state under workdir.
        self.short = Path(tempfile.mkdtemp(prefix=f"ml{self.rid}-", dir="/tmp"))
        self.namespaces: list[Netns] = []
        self.daemons: list[Daemon] = []
        self.nodes: dict[str, Node] = {}
        self.control: Control | None = None
        self.replicas: list[ControlReplica] = []
        self.pg = None                    # use_postgresql(): the server
        self.pg_database: str | None = None
        self.closed = False
        _live_labs.append(self)
        self.bridge = self._netns("net")
        self.bridge.ip("link", "add", "br0", "type", "bridge")
        self.bridge.ip("link", "set", "br0", "up")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _netns(self, host) -> Netns:
        ns = Netns(f"{NS_PREFIX}{self.rid}-{host}")
        self.namespaces.append(ns)
        return ns.create()

    def add_host(self, host: str, address: str) -> Netns:
        """A namespace with eth0 on the underlay bridge at address/24."""
        ns = self._netns(host)
        port = f"v{len(self.namespaces)}"
        ns.ip("link", "add", "eth0", "type", "veth", "peer", "name", port,
              "netns", self.bridge.name)
        self.bridge.ip("link", "set", port, "master", "br0", "up")
        ns.ip("addr", "add", f"{address}/24", "dev", "eth0")
        ns.ip("link", "set", "eth0", "up")
        return ns

    def use_postgresql(self, server):
        """The control server's mesh goes into a fresh database of server
        (tests/pg/pgserver.py's PgServer), dropped at close()."""
        self.pg = server

    def database_url(self) -> str | None:
        """--database for meshd-control: None for the state dir's SQLite file."""
        if self.pg is None:
            return None
        if self.pg_database is None:
            self.pg_database = f"ml{self.rid}_{secrets.token_hex(4)}"
            self.pg.create_database(self.pg_database)
        return self.pg.url(self.pg_database)

    def add_control(self, *, start=True, hub=True, hub_args=()) -> Control:
        """Control server at 192.0.2.1: init, then (start) serve until READY.
        hub: with its hub (interface m<rid>z, wireguard-go); hub_args: more
        serve options (--hub-port, --keep-hub, …)."""
        ns = self.add_host("control", self.control_address)
        self.control = Control(self, ns, self.control_address, hub=hub, hub_args=hub_args)
        self.daemons.append(self.control)
        self.control.init()
        if start:
            self.control.start()
            self.control.wait_ready(20)
        return self.control

    def add_control_replica(self, *, start=True) -> ControlReplica:
        """Another serve of add_control()'s database, at 192.0.2.2, .3, …
        (hosts control2, control3, …; hub interfaces m<rid>y, x, …)."""
        assert self.control is not None, "add_control() first"
        k = len(self.replicas) + 2
        address = f"{UNDERLAY}.{k}"
        ns = self.add_host(f"control{k}", address)
        replica = ControlReplica(self, ns, address, self.control, f"control{k}",
                                 f"m{self.rid}{chr(ord('z') + 1 - k)}")
        self.replicas.append(replica)
        self.daemons.append(replica)
        if start:
            replica.start()
            replica.wait_ready(20)
        return replica

    def add_node(self, name, *, authkey=None, join=True, **kwargs) -> Node:
        """A meshd node. authkey: written to AuthKeyFile. join=False: no
        ControlURL either (it waits for `meshctl up`). Not started."""
        index = len(self.nodes)
        address = f"{UNDERLAY}.{10 + index}"
        ns = self.add_host(name, address)
        node = Node(self, ns, name, index, address, authkey=authkey,
                    control=self.control if join else None, **kwargs)
        self.nodes[name] = node
        self.daemons.append(node)
        return node

    def fake_control(self, mode, *, port=9443) -> "FakeControl":
        assert self.control is not None, "add_control() first: the fake lives in its namespace"
        fake = FakeControl(self, self.control.ns, self.control.address, port, mode)
        self.daemons.append(fake)
        return fake.start_and_wait()

    def log_tails(self, lines=40) -> str:
        return "\n".join(f"----- {d.name}: {d.log} (last {lines} lines)\n{d.log_tail(lines)}"
                         for d in self.daemons)

    def close(self):
        if self.closed:
            return
        self.closed = True
        for d in self.daemons:
            try:
                d.stop(timeout=5)
            except Exception:
                pass
        for ns in reversed(self.namespaces):
            ns.destroy()
        for node in self.nodes.values():
            _remove_wg_socket(node.interface)
        if self.control is not None:
            _remove_wg_socket(self.control.hub_interface)
        for replica in self.replicas:
            _remove_wg_socket(replica.hub_interface)
        for d in self.daemons:
            d.notify.close()
        if self.pg is not None and self.pg_database is not None:
            try:
                self.pg.drop_database(self.pg_database)
            except Exception:
                pass
        shutil.rmtree(self.short, ignore_errors=True)
        (REGISTRY_DIR / self.rid).unlink(missing_ok=True)
        if self in _live_labs:
            _live_labs.remove(self)


@atexit.register
def _close_live_labs():
    for lab in list(_live_labs):
        lab.close()


# ---- proof of key possession (docs/protocol.md, "Joining"), as
# src/shared/register-proof.c computes it: X25519 from libsodium, BLAKE2b and
# HMAC-SHA256 from the standard library.

REGISTER_PROOF_CONTEXT = b"meshd register proof v1"
_sodium = None
_fake_private: dict[str, str] = {}      # public key → private key, both base64


def _libsodium():
    global _sodium
    if _sodium is None:
        import ctypes
        import ctypes.util
        _sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
        if _sodium.sodium_init() < 0:
            raise OSError("sodium_init failed")
    return _sodium


def x25519(private: bytes, public: bytes) -> bytes | None:
    """None for an all-zero result (a low-order public key), as libsodium."""
    import ctypes
    out = ctypes.create_string_buffer(32)
    if _libsodium().crypto_scalarmult(out, private, public) != 0:
        return None
    return out.raw


def public_from_private(private_b64: str) -> str:
    import ctypes
    out = ctypes.create_string_buffer(32)
    _libsodium().crypto_scalarmult_base(out, base64.b64decode(private_b64))
    return base64.b64encode(out.raw).decode()


def keypair() -> tuple[str, str]:
    """(private, public), base64, like `wg genkey | wg pubkey`."""
    k = bytearray(secrets.token_bytes(32))
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    private = base64.b64encode(bytes(k)).decode()
    return private, public_from_private(private)


def register_proof(private_b64, server_key_b64, challenge, public_key, hostname, authkey) -> str:
    import hmac
    server_key = base64.b64decode(server_key_b64)
    shared = x25519(base64.b64decode(private_b64), server_key)
    if shared is None:
        raise ValueError("server key of low order")
    node_public = base64.b64decode(public_from_private(private_b64))
    key = hashlib.blake2b(REGISTER_PROOF_CONTEXT + server_key + node_public, key=shared,
                          digest_size=32).digest()
    transcript = b"".join(len(f).to_bytes(4, "big") + f for f in (
        REGISTER_PROOF_CONTEXT, challenge.encode(), public_key.encode(), hostname.encode(),
        str(authkey).encode()))
    return base64.b64encode(hmac.new(key, transcript, hashlib.sha256).digest()).decode()


def fake_public_key() -> str:
    """A fresh WireGuard public key whose private key this module keeps, so
    that ControlApi.register() can prove possession; wireguard-go accepts it
    as a peer too."""
    private, public = keypair()
    _fake_private[public] = private
    return public


def private_key_of(public_key: str) -> str | None:
    return _fake_private.get(public_key)


# --------------------------------------------------------------- fake control

class FakeControl(Daemon):
    """An HTTPS server with its own key that answers /v1/register badly."""

    def __init__(self, lab, ns, address, port, mode):
        d = lab.dir / f"fake-{mode}"
        d.mkdir(parents=True, exist_ok=True)
        super().__init__(lab, ns, f"fake-{mode}", d / "fake.log", lab.short / f"fake-{mode}.notify")
        self.address, self.port, self.mode = address, port, mode
        self.url = f"https://{address}:{port}"
        self.key, self.cert = d / "key.pem", d / "cert.pem"
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=fake"])
        self.pin = spki_pin(self.key)

    def argv(self):
        return [PYTHON, Path(__file__).resolve(), "fake-control", "--listen",
                f"{self.address}:{self.port}", "--cert", self.cert, "--key", self.key,
                "--mode", self.mode]

    def start_and_wait(self):
        self.start()
        self.wait_ready(10)
        return self

    @property
    def requests(self) -> int:
        return sum(1 for line in self.log_tail(1000).splitlines() if line.startswith("request "))


FAKE_MODES = ("garbage", "wrong-shape", "truncated", "truncated-tls-close")


def _fake_control_main(argv):
    import argparse
    import http.server

    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--mode", choices=FAKE_MODES, required=True)
    a = ap.parse_args(argv)
    valid = json.dumps({"node_id": 1, "name": "x", "token": "t", "netmap": {
        "version": 1, "domain": "mesh.internal", "ipv4_range": "100.64.0.0/10",
        "ipv6_range": "fd7a:115c:a1e0::/48", "self": {"name": "x", "public_key": "",
        "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2", "endpoints": []}, "peers": []}}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            print(f"request {self.command} {self.path}", flush=True)
            if self.path == "/v1/challenge":    # a good challenge: the register gets the bad reply
                body = json.dumps({"challenge": "fake", "server_key": keypair()[1], "expires": 0}).encode()
                self._send(200, body, len(body))
            elif a.mode == "garbage":
                body = b"\x00\xffthis is not json {{{"
                self._send(200, body, len(body))
            elif a.mode == "wrong-shape":
                body = b'{"node_id": "three", "netmap": [1, 2]}'
                self._send(200, body, len(body))
            else:   # truncated: promise the whole reply, send a third, hang up
                self._send(200, valid[: len(valid) // 3], len(valid))
                self.close_connection = True
                if a.mode == "truncated-tls-close":
                    try:        # a clean TLS close_notify: only HTTP sees the cut
                        self.connection.settimeout(2)
                        self.connection.unwrap()
                    except (OSError, ValueError):
                        pass

        def _send(self, code, body, length):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        do_GET = do_POST = _answer

        def log_message(self, fmt, *args):
            pass

    serve_https(Handler, a.listen, a.cert, a.key, f"fake control ({a.mode})")


def serve_https(handler, listen: str, cert, key, status: str):
    """Serves handler over TLS on listen ("IP:PORT") with the given
    certificate and key, tells the Daemon harness READY=1 through
    $NOTIFY_SOCKET, and never returns: the body of every fake server."""
    import http.server
    import ssl

    host, port = listen.rsplit(":", 1)
    srv = http.server.ThreadingHTTPServer((host, int(port)), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    notify = os.environ.get("NOTIFY_SOCKET")
    if notify:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1\nSTATUS=" + status.encode(), notify)
    print(f"listening on {listen} ({status})", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "fake-control":
        _fake_control_main(sys.argv[2:])
    else:
        print(__doc__)


# ---- names through the NSS module (libnss_mesh), without touching the host ----

NSS_LIBRARY = BUILD_DIR / "src" / "nss" / "libnss_mesh.so.2"

# Debian 12's databases, so that getent and ping find users and groups.
NSSWITCH_PLAIN = ("# test nsswitch.conf (meshlab)\n"
                  "passwd:         files\n"
                  "group:          files\n"
                  "shadow:         files\n"
                  "\n"
                  "hosts:          files dns\n"
                  "networks:       files\n")

# Runs "$@" after the mounts; arguments: conf, lower dir ('' for none),
# system library dir, runtime dir, then the command.
MOUNT_SCRIPT = r"""
set -e
conf=$1 lower=$2 libdir=$3 runtime=$4
shift 4
mount --bind "$conf" /etc/nsswitch.conf
if [ -n "$lower" ]; then
        mount -t overlay meshlab-nss -o "lowerdir=$lower:$libdir" "$libdir"
        mount -t tmpfs meshlab-run /run
        mkdir /run/meshd
        mount --bind "$runtime" /run/meshd
fi
exec "$@"
"""


def system_library_dir() -> Path | None:
    """The multiarch directory glibc's loader searches by default."""
    multiarch = sysconfig.get_config_var("MULTIARCH")
    for d in ([Path("/usr/lib") / multiarch] if multiarch else []) + [Path("/usr/lib64"), Path("/usr/lib")]:
        if (d / "libc.so.6").exists():
            return d
    return None


class NssResolver:
    """Runs programs in a node's namespace with the mesh NSS module active."""

    def __init__(self, lab, node, conf: Path):
        self.lab, self.node, self.conf = lab, node, conf
        self.hosts_file = node.runtime_dir / "hosts"

    def run(self, *argv, installed=False, user=None, env=None, timeout=30):
        lower = libdir = ""
        environment = dict(os.environ)
        environment.pop("LD_PRELOAD", None)
        if installed:
            lower = self.lab.dir / "nss-lower"
            if not lower.exists():
                lower.mkdir()
                shutil.copy2(NSS_LIBRARY, lower / NSS_LIBRARY.name)
            libdir = system_library_dir()
            environment.pop("LD_LIBRARY_PATH", None)
            environment.pop("MESHD_HOSTS_FILE", None)
        else:
            environment["LD_LIBRARY_PATH"] = str(NSS_LIBRARY.parent)
            environment["MESHD_HOSTS_FILE"] = str(self.hosts_file)
        environment.update(env or {})
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
        return self.node.exec("unshare", "--mount", "--propagation", "private",
                              "sh", "-c", MOUNT_SCRIPT, "sh", self.conf, lower, libdir,
                              self.node.runtime_dir, *prefix, *argv,
                              env=environment, timeout=timeout)

    def getent(self, database, key, **kwargs):
        return self.run("getent", database, key, **kwargs)

    def addresses(self, database, key, **kwargs) -> set:
        """The addresses `getent DATABASE KEY` prints; empty when it fails."""
        cp = self.getent(database, key, **kwargs)
        if cp.returncode != 0:
            return set()
        return {line.split()[0] for line in cp.stdout.splitlines() if line.strip()}


def write_nsswitch(lab, node, with_mesh: bool) -> Path:
    """An nsswitch.conf in the lab dir; with_mesh: edited by `meshctl nss enable`."""
    path = lab.dir / f"nsswitch-{'mesh' if with_mesh else 'plain'}.conf"
    path.write_text(NSSWITCH_PLAIN)
    if with_mesh:
        cp = node.meshctl("nss", "enable", "--nsswitch", path)
        if cp.returncode != 0:
            raise RuntimeError(f"meshctl nss enable: {cp.stderr.strip()}")
    return path


# ---- NAT topologies: a "public" segment, home routers with nftables NAT ----
#
#     lab = NatLab(tmp_path)                 # the bridge namespace is the internet
#     control = lab.add_control()            # 203.0.113.1 (public)
#     home = lab.add_router("home", kind="preserving")    # 198.51.100.1, LAN 192.0.2.0/28
#     cafe = lab.add_router("cafe", kind="random")        # 198.51.100.2, LAN 192.0.2.16/28
#     alpha = lab.add_node("alpha", behind=home, authkey=key)  # 192.0.2.2, default via .1
#     vps = lab.add_node("vps", authkey=key)                   # 203.0.113.10, public
#     cafe.set_nat("preserving")             # new rules + conntrack flushed ("reboot")
#     alpha.move_to(cafe)                    # roaming: alpha's veth moves to cafe's LAN
#
# Public hosts and routers' WAN sides share the lab bridge with addresses
# from 198.51.100.0/24 and 203.0.113.0/24 and a default route on-link, so
# every public address reaches every other. Each router has a LAN bridge
# with a /28 of 192.0.2.0/24, forwards, masquerades what leaves its WAN
# side and filters like a home router: replies to what went out pass,
# unsolicited inbound is dropped silently (in the input hook, so the
# dropped packet leaves no conntrack entry that could steal a mapping).

PUBLIC_ROUTERS = "198.51.100"   # WAN sides of routers: .1, .2, …
PUBLIC_HOSTS = "203.0.113"      # control .1, public nodes .10 and up, other hosts .100 and up
NAT_KINDS = {
    # endpoint-independent mapping, keeps the source port when it is free
    "preserving": "masquerade",
    # a fresh random port for every new flow (per destination): symmetric NAT
    "random": "masquerade fully-random",
}
_CLONE_NEWNET = 0x40000000
_libc = None


def netns_socket(ns: Netns, family=socket.AF_INET, type=socket.SOCK_DGRAM, proto=0) -> socket.socket:
    """A socket that lives in namespace ns, usable from this process: the
    calling thread enters ns (setns) just long enough to create it."""
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    try:
        if _libc.setns(target, _CLONE_NEWNET) != 0:
            raise OSError(ctypes_errno(), f"setns into {ns.name}")
        try:
            return socket.socket(family, type, proto)
        finally:
            if _libc.setns(own, _CLONE_NEWNET) != 0:      # never stay in the lab's namespace
                raise OSError(ctypes_errno(), "setns back to our own namespace")
    finally:
        os.close(own)
        os.close(target)


def ctypes_errno() -> int:
    import ctypes
    return ctypes.get_errno()


def udp_socket(ns: Netns, port=0, address="0.0.0.0", timeout=1.0) -> socket.socket:
    s = netns_socket(ns)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.settimeout(timeout)
    return s


def _ctnetlink(ns: Netns, payload: bytes):
    """One IPCTNL_MSG_CT_DELETE request (NFNL_SUBSYS_CTNETLINK, NLM_F_REQUEST
    | NLM_F_ACK, family AF_INET) in ns; payload: its attributes."""
    import struct
    s = netns_socket(ns, socket.AF_NETLINK, socket.SOCK_RAW, 12)     # NETLINK_NETFILTER
    try:
        s.settimeout(2)
        body = struct.pack("=BBH", socket.AF_INET, 0, 0) + payload
        s.sendto(struct.pack("=IHHII", 16 + len(body), (1 << 8) | 2, 0x1 | 0x4, 1, 0) + body, (0, 0))
        reply = s.recv(65536)
        mtype = struct.unpack_from("=H", reply, 4)[0]
        error = struct.unpack_from("=i", reply, 16)[0] if mtype == 2 else 0     # NLMSG_ERROR
        if error not in (0, -2):        # ENOENT: the entry went away by itself
            raise OSError(-error, f"conntrack delete in {ns.name}")
    finally:
        s.close()


def _nla(kind: int, data: bytes) -> bytes:
    import struct
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * (-n % 4)


def flush_conntrack(ns: Netns, proto: str | None = None):
    """Deletes ns's IPv4 conntrack entries (like `conntrack -F`), or only
    those of proto ("udp": the NAT mappings of UDP flows; TCP connections
    keep theirs)."""
    if proto is None:
        _ctnetlink(ns, b"")             # no tuple: flush
        return
    import struct
    nested = 0x8000
    for line in ns.exec("cat", "/proc/net/nf_conntrack", check=True).stdout.splitlines():
        f = line.split()
        if len(f) < 3 or f[0] != "ipv4" or f[2] != proto:
            continue
        kv = dict(x.split("=", 1) for x in f if "=" in x)    # the first src/dst/sport/dport: original
        ip = _nla(1 | nested, _nla(1, socket.inet_aton(kv["src"])) + _nla(2, socket.inet_aton(kv["dst"])))
        pr = _nla(2 | nested, _nla(1, bytes([socket.getprotobyname(proto)])) +
                  _nla(2, struct.pack("!H", int(kv["sport"]))) + _nla(3, struct.pack("!H", int(kv["dport"]))))
        _ctnetlink(ns, _nla(1 | nested, ip + pr))        # CTA_TUPLE_ORIG


@dataclasses.dataclass
class Attachment:
    """A host's link into a router's LAN: `ifname` in the host, `peer` (the
    other end of the veth) in the router, enslaved to its LAN bridge."""
    host: Netns
    router: "Router"
    ifname: str
    peer: str
    address: str

    def move_to(self, router: "Router", *, new_veth=False):
        """Roaming. Default: the veth's router end moves into router's
        namespace and LAN (the host keeps its interface, gets a new address
        and default route). new_veth=True: a new veth into router's LAN
        comes up first, then the old one is deleted."""
        assert router is not self.router, f"{self.host.name} is already behind {router.name}"
        address = router._next_address()
        if new_veth:
            old = self.ifname
            self.ifname = router._new_ifname(self.host)
            self.peer = router._plug(self.host, self.ifname, address)
            self.host.ip("route", "replace", "default", "via", router.gateway, "dev", self.ifname)
            self.host.ip("link", "del", old)
        else:
            self.router.ns.ip("link", "set", self.peer, "netns", router.ns.name)
            router.ns.ip("link", "set", self.peer, "master", "lan0", "up")
            self.host.ip("addr", "flush", "dev", self.ifname)
            self.host.ip("addr", "add", f"{address}/28", "dev", self.ifname)
            self.host.ip("link", "set", self.ifname, "up")
            self.host.ip("route", "replace", "default", "via", router.gateway, "dev", self.ifname)
        self.router, self.address = router, address
        return address


class Router:
    """A home router namespace: WAN side eth0 on the public segment, LAN
    bridge lan0 with a /28 of 192.0.2.0/24, NAT of kind "preserving" or
    "random" (see NAT_KINDS), home-router filtering."""

    def __init__(self, lab: "NatLab", name: str, index: int, kind: str):
        assert 0 <= index < 16, "192.0.2.0/24 has room for 16 LANs"
        self.lab, self.name, self.index = lab, name, index
        self.public = f"{PUBLIC_ROUTERS}.{1 + index}"
        self.lan = ipaddress.ip_network(f"{UNDERLAY}.{16 * index}/28")
        self.gateway = str(self.lan.network_address + 1)
        self._hosts = iter(list(self.lan.hosts())[1:])
        self.ns = lab.add_host(name, self.public)
        ns = self.ns
        for key, value in (("net.ipv4.ip_forward", "1"),
                           ("net.ipv4.conf.eth0.arp_ignore", "1")):   # no ARP answers for the LAN side
            ns.exec("sysctl", "-qw", f"{key}={value}", check=True)
        ns.ip("link", "add", "lan0", "type", "bridge")
        ns.ip("addr", "add", f"{self.gateway}/28", "dev", "lan0")
        ns.ip("link", "set", "lan0", "up")
        ns.exec("nft", "-f", "-", check=True, input="""
            table inet meshlab_filter {
                chain input {
                    type filter hook input priority filter; policy accept;
                    iifname "eth0" ct state established,related accept
                    iifname "eth0" icmp type echo-request accept
                    iifname "eth0" drop
                }
                chain forward {
                    type filter hook forward priority filter; policy accept;
                    iifname "eth0" ct state established,related accept
                    iifname "eth0" drop
                }
            }""")
        self.kind = None
        self.set_nat(kind, flush=None)

    def set_nat(self, kind: str, *, flush="all"):
        """Replaces the NAT rule atomically. Mappings that exist keep their
        ports (flows kept alive by keepalives would keep them for ever), so
        flush: "all" forgets every mapping (conntrack), like a router that
        reboots with the new setting — TCP connections through it die
        silently too; "udp" forgets only UDP mappings; None keeps them."""
        if kind not in NAT_KINDS:
            raise ValueError(f"NAT kind {kind!r}: one of {sorted(NAT_KINDS)}")
        self.ns.exec("nft", "-f", "-", check=True, input=f"""
            table ip meshlab_nat {{}}
            flush table ip meshlab_nat
            table ip meshlab_nat {{
                chain postrouting {{
                    type nat hook postrouting priority srcnat; policy accept;
                    oifname "eth0" {NAT_KINDS[kind]}
                }}
            }}""")
        if flush:
            assert flush in ("all", "udp"), flush
            flush_conntrack(self.ns, None if flush == "all" else flush)
        self.kind = kind

    def attach(self, host: Netns, ifname="eth0") -> Attachment:
        """Plugs host into the LAN: veth, the next free address, default
        route via the router."""
        address = self._next_address()
        peer = self._plug(host, ifname, address)
        host.ip("route", "add", "default", "via", self.gateway, "dev", ifname)
        return Attachment(host, self, ifname, peer, address)

    def _next_address(self) -> str:
        try:
            return str(next(self._hosts))
        except StopIteration:
            raise RuntimeError(f"router {self.name}: LAN {self.lan} is full") from None

    def _new_ifname(self, host: Netns) -> str:
        names = set(re.findall(r"^\d+: ([^:@]+)", host.ip("-o", "link").stdout, re.M))
        return next(f"eth{i}" for i in range(100) if f"eth{i}" not in names)

    def _plug(self, host: Netns, ifname: str, address: str) -> str:
        self.lab._links += 1
        peer = f"l{self.lab._links}"        # unique in the lab: the end may move between routers
        host.ip("link", "add", ifname, "type", "veth", "peer", "name", peer, "netns", self.ns.name)
        self.ns.ip("link", "set", peer, "master", "lan0", "up")
        host.ip("addr", "add", f"{address}/28", "dev", ifname)
        host.ip("link", "set", ifname, "up")
        return peer

    def conntrack(self) -> str:
        """The router's UDP NAT mappings, for failure messages (`conntrack -L` is not installed)."""
        cp = self.ns.exec("cat", "/proc/net/nf_conntrack")
        return cp.stdout if cp.returncode == 0 else f"({cp.stderr.strip()})"

    def __repr__(self):
        return f"<Router {self.name} {self.public} LAN {self.lan} {self.kind}>"


class NatNode(Node):
    """A meshd node on the public segment or behind a Router."""

    attachment: Attachment | None = None

    @property
    def router(self) -> Router | None:
        return self.attachment.router if self.attachment else None

    def move_to(self, router: Router, *, new_veth=False) -> str:
        """Roams to router's LAN (see Attachment.move_to); the new address."""
        assert self.attachment is not None, f"{self.name} is public: nothing to move"
        self.address = self.attachment.move_to(router, new_veth=new_veth)
        return self.address


class NatLab(Lab):
    """A Lab whose bridge is the public internet, with routers (NAT) and
    nodes behind them or on it; see the comment above NAT_KINDS."""

    control_address = f"{PUBLIC_HOSTS}.1"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.routers: dict[str, Router] = {}
        self._links = 0
        self._public_nodes = 0
        self._public_hosts = 0

    def add_host(self, host: str, address: str) -> Netns:
        """A namespace on the public segment at address/24, default route on-link."""
        ns = super().add_host(host, address)
        ns.ip("route", "add", "default", "dev", "eth0")
        return ns

    def add_public_host(self, host: str) -> tuple[Netns, str]:
        """A plain (meshd-less) host on the public segment: (namespace, address)."""
        address = f"{PUBLIC_HOSTS}.{100 + self._public_hosts}"
        self._public_hosts += 1
        return self.add_host(host, address), address

    def add_router(self, name: str, kind="preserving") -> Router:
        router = Router(self, name, len(self.routers), kind)
        self.routers[name] = router
        return router

    def add_lan_host(self, host: str, router: Router) -> tuple[Netns, Attachment]:
        """A plain (meshd-less) host in router's LAN."""
        ns = self._netns(host)
        return ns, router.attach(ns)

    def add_node(self, name, *, behind: Router | None = None, authkey=None, join=True,
                 **kwargs) -> NatNode:
        """A meshd node behind router `behind`, or public (203.0.113.10 and
        up) without one. Not started."""
        index = len(self.nodes)
        if behind is None:
            address = f"{PUBLIC_HOSTS}.{10 + self._public_nodes}"
            self._public_nodes += 1
            ns, attachment = self.add_host(name, address), None
        else:
            ns = self._netns(name)
            attachment = behind.attach(ns)
            address = attachment.address
        node = NatNode(self, ns, name, index, address, authkey=authkey,
                       control=self.control if join else None, **kwargs)
        node.attachment = attachment
        self.nodes[name] = node
        self.daemons.append(node)
        return node

    def wg_dumps(self) -> str:
        """`wg show IFNAME dump` of every node and of the hub, for failure
        messages. (wireguard-go's UAPI sockets are shared by all namespaces,
        so `wg show all` would list every lab's devices.)"""
        out = []
        devices = [(n.name, n.ns, n.interface) for n in self.nodes.values()]
        if self.control is not None and getattr(self.control, "hub", False):
            devices.append(("hub", self.control.ns, self.control.hub_interface))
        for name, ns, ifname in devices:
            cp = ns.exec("wg", "show", ifname, "dump")
            text = cp.stdout.rstrip() if cp.returncode == 0 else f"({cp.stderr.strip()})"
            out.append(f"--- {name}: wg show {ifname} dump\n{text}")
        return "\n".join(out) or "(no WireGuard devices)"

    def log_tails(self, lines=40) -> str:
        routers = "\n".join(f"----- {r!r}: conntrack\n{r.conntrack().rstrip()}"
                            for r in self.routers.values())
        return "\n".join([super().log_tails(lines), "----- WireGuard", self.wg_dumps(), routers])


# ---- the control server's HTTP API, spoken directly from a namespace ----
#
#     client = lab.add_host("client", "192.0.2.250")
#     api = ControlApi(client, control)
#     reply = api.register(key, fake_public_key(), "nas")     # HttpReply
#     api.netmap(reply.json()["token"])
#
# For the fault and security tests: bursts of registrations, bogus keys,
# other nodes' tokens, requests cut short. TLS is not verified (the test
# started that server, and the pin is meshd's business, tested elsewhere).

CLIENT_ADDRESS = f"{UNDERLAY}.250"


def tls_connect(ns: Netns, host: str, port: int, *, timeout=10.0):
    """A TCP connection from namespace ns to host:port with the TLS
    handshake done; certificate not checked."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = netns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        # like curl: http.client writes headers and body separately, and
        # Nagle would hold the body for the server's delayed ACK (40 ms)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(timeout)
        s.connect((host, port))
        return ctx.wrap_socket(s, server_hostname=host)
    except BaseException:
        s.close()
        raise


@dataclasses.dataclass
class HttpReply:
    status: int
    headers: dict           # lower-case names
    body: bytes
    seconds: float          # from sending the request (connect included) to the whole reply

    def json(self):
        return json.loads(self.body)


class ControlApi:
    """HTTPS requests to a control server from inside namespace ns. Each
    request opens its own connection unless keep_alive=True, which reuses
    one (and reconnects once when the server had closed it)."""

    def __init__(self, ns: Netns, control, *, timeout=15.0):
        self.ns, self.host, self.port, self.timeout = ns, control.address, control.port, timeout
        self._conn = None

    def _connect(self):
        import http.client
        api = self

        class Connection(http.client.HTTPConnection):
            def connect(self):
                self.sock = tls_connect(api.ns, api.host, api.port, timeout=self.timeout)

        return Connection(self.host, self.port, timeout=self.timeout)

    def request(self, method, path, body=None, *, token=None, headers=None,
                keep_alive=False) -> HttpReply:
        import http.client
        import ssl
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        for attempt in (0, 1):
            reused = keep_alive and self._conn is not None
            conn = self._conn if reused else self._connect()
            start = time.monotonic()
            try:
                conn.request(method, path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ssl.SSLEOFError):
                conn.close()
                self._conn = None
                if reused and attempt == 0:
                    continue        # the server closed an idle keep-alive connection
                raise
            except BaseException:
                conn.close()
                self._conn = None
                raise
            reply = HttpReply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data,
                              time.monotonic() - start)
            if keep_alive and not resp.will_close:
                self._conn = conn
            else:
                conn.close()
                self._conn = None
            return reply
        raise AssertionError("not reached")

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def challenge(self, **kwargs) -> dict:
        reply = self.request("POST", "/v1/challenge", {}, **kwargs)
        assert reply.status == 200, (reply.status, reply.body)
        return reply.json()

    def register(self, authkey, public_key, hostname, endpoints=(), *, private_key=None,
                 prove=True, **kwargs) -> HttpReply:
        """POST /v1/register; with prove (and the private key: given, or
        known from fake_public_key()), first a challenge, then the proof."""
        body = {"authkey": str(authkey), "public_key": public_key, "hostname": hostname,
                "endpoints": list(endpoints)}
        private_key = private_key or private_key_of(public_key)
        if prove and private_key:
            ch = self.challenge(**{k: v for k, v in kwargs.items() if k == "keep_alive"})
            body["challenge"] = ch["challenge"]
            body["proof"] = register_proof(private_key, ch["server_key"], ch["challenge"],
                                           public_key, hostname, authkey)
        return self.request("POST", "/v1/register", body, **kwargs)

    def netmap(self, token, since=0, timeout=None, **kwargs) -> HttpReply:
        path = f"/v1/netmap?since={since}" + (f"&timeout={timeout}" if timeout is not None else "")
        return self.request("GET", path, token=token, **kwargs)

    def set_endpoints(self, token, body, **kwargs) -> HttpReply:
        return self.request("POST", "/v1/endpoints", body, token=token, **kwargs)


class LogWatcher:
    """Lines a daemon appends to its log from now on."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.lines: list[str] = []
        self._partial = b""

    def poll(self) -> list[str]:
        """Reads what was appended; returns the new complete lines."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        new = [line.decode(errors="replace") for line in complete]
        self.lines += new
        return new

    def wait_for(self, pattern, timeout, *, start=0, interval=0.002, what=None) -> tuple[int, re.Match]:
        """(index in self.lines, match) of the first line from index start
        on that matches pattern; polls every interval seconds."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = start
        while True:
            self.poll()
            for i in range(checked, len(self.lines)):
                m = rx.search(self.lines[i])
                if m:
                    return i, m
            checked = max(checked, len(self.lines))
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout:g} s waiting for "
                                   f"{what or pattern!r} in {self.path}")
            time.sleep(interval)

    def matching(self, pattern) -> list[str]:
        self.poll()
        rx = re.compile(pattern)
        return [line for line in self.lines if rx.search(line)]


def wireguard_go_pid(node: Node) -> int | None:
    """The wireguard-go process serving node's interface, in node's namespace."""
    for pid in node.ns.pids():
        if _wireguard_go_ifname(pid) == node.interface:
            return pid
    return None
