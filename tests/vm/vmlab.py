# SPDX-License-Identifier: LGPL-2.1-or-later
"""qemu (TCG) virtual machines for the VM suite.

- build_tree(): `meson setup` + `ninja` + `meson install --destdir` of the
  source tree in build-vm/ (release, prefix /usr), the tree that goes into
  every VM.
- Payload: a tar archive, attached as a read-only second disk (/dev/vdb).
  The initramfs of image.py unpacks it over the root file system and runs
  its /.meshd-vm-setup script in a chroot, before systemd starts, so that
  systemd's first and only boot already sees the installed units,
  generators, fstab and configuration (a real boot, not a daemon-reload).
  Paths under /lib, /bin, /sbin are stored under /usr (merged /usr).
- VM: one qemu process with a qcow2 overlay on the cached base image (the
  overlay survives a power-off, so a VM can boot again with its state), a
  virtio-net NIC on a private L2 (qemu `-netdev dgram` over Unix datagram
  sockets in the run directory, joined by Switch: no host interface, no
  port to collide, and a VM runs alone when the others are off), the
  serial console in
  a file, and a virtio-serial port to the test agent (image.py) through
  which the tests run commands.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("MESHD_VM_BUILD_DIR", REPO / "build-vm"))
L2_PREFIX = "192.168.77"


class VMError(RuntimeError):
    pass


def run(argv, **kw):
    kw.setdefault("check", True)
    return subprocess.run([str(a) for a in argv], **kw)


# ---------------------------------------------------------------- build

def build_tree(destdir: Path) -> Path:
    """Configure, build and install the tree into destdir; returns destdir."""
    opts = ["--buildtype=release", "-Dprefix=/usr", "--sysconfdir=/etc",
            "--localstatedir=/var", "-Dtests=false"]
    if (BUILD_DIR / "meson-private/coredata.dat").exists():
        cp = run(["meson", "setup", "--reconfigure", BUILD_DIR, *opts], check=False,
                 capture_output=True, text=True)
        if cp.returncode != 0:
            run(["meson", "setup", "--wipe", BUILD_DIR, *opts], capture_output=True, text=True)
    else:
        run(["meson", "setup", BUILD_DIR, *opts], cwd=REPO, capture_output=True, text=True)
    cp = run(["ninja", "-C", BUILD_DIR], check=False, capture_output=True, text=True)
    if cp.returncode != 0:
        raise VMError(f"ninja -C {BUILD_DIR} failed:\n{cp.stdout[-6000:]}{cp.stderr[-3000:]}")
    if destdir.exists():
        shutil.rmtree(destdir)
    cp = run(["meson", "install", "-C", BUILD_DIR, "--destdir", destdir, "--no-rebuild"],
             check=False, capture_output=True, text=True)
    if cp.returncode != 0:
        raise VMError(f"meson install failed:\n{cp.stdout[-4000:]}{cp.stderr[-3000:]}")
    return destdir


def _usr_merged(rel: str) -> str:
    first, _, rest = rel.partition("/")
    if first in ("lib", "lib64", "bin", "sbin"):
        return f"usr/{first}/{rest}" if rest else f"usr/{first}"
    return rel


class Payload:
    """Files for one boot of one VM: a tree (e.g. the meson install) plus
    single files, plus a setup script run in a chroot before systemd."""

    def __init__(self):
        self.trees: list[Path] = []
        self.files: dict[str, tuple[int, bytes]] = {}
        self.setup: list[str] = []

    def add_tree(self, path: Path):
        self.trees.append((path, ""))

    def add_tree_at(self, path: Path, where: str):
        """path's contents go to /where (which must not exist in the image)."""
        self.trees.append((path, where.strip("/")))

    def add_file(self, path: str, text: str | bytes, mode: int = 0o644):
        data = text.encode() if isinstance(text, str) else text
        self.files[_usr_merged(path.lstrip("/"))] = (mode, data)

    def add_setup(self, script: str):
        self.setup.append(script)

    def write(self, out: Path):
        with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
            for tree, where in self.trees:
                if where:
                    tar.add(tree, arcname=where, recursive=False)
                for p in sorted(tree.rglob("*")):
                    rel = _usr_merged(str(Path(where) / p.relative_to(tree)))
                    if rel in ("usr", "usr/lib", "usr/bin", "usr/sbin"):
                        continue        # exist in the image
                    tar.add(p, arcname=rel, recursive=False)
            dirs = set()
            for rel, (mode, data) in sorted(self.files.items()):
                parts = rel.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in dirs and d not in ("usr", "usr/lib", "usr/bin", "usr/sbin", "etc", "var"):
                        ti = tarfile.TarInfo(d)
                        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, time.time()
                        tar.addfile(ti)
                    dirs.add(d)
                ti = tarfile.TarInfo(rel)
                ti.size, ti.mode, ti.mtime = len(data), mode, time.time()
                tar.addfile(ti, io.BytesIO(data))
            script = "set -x\n" + "\n".join(self.setup) + "\n"
            ti = tarfile.TarInfo(".meshd-vm-setup")
            ti.size, ti.mode, ti.mtime = len(script), 0o755, time.time()
            tar.addfile(ti, io.BytesIO(script.encode()))
        # a block device is a whole number of 512-byte sectors
        size = out.stat().st_size
        if size % 512:
            with open(out, "ab") as f:
                f.write(b"\0" * (512 - size % 512))


# ---------------------------------------------------------------- agent

class Result:
    def __init__(self, cmd, rc, out, err):
        self.cmd, self.returncode, self.stdout, self.stderr = cmd, rc, out, err

    def __repr__(self):
        return f"Result(rc={self.returncode}, cmd={self.cmd!r})"

    def check(self):
        if self.returncode != 0:
            raise VMError(f"command failed (exit status {self.returncode}): {self.cmd}\n"
                          f"stdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}")
        return self


class Agent:
    """Client of the agent in the VM (virtio-serial, see image.py)."""

    def __init__(self, path: Path):
        self.path = path
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        self.buf = b""

    def _connect(self, deadline):
        while self.sock is None:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(self.path))
                self.sock = s
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise VMError(f"cannot connect to the agent socket {self.path}")
                time.sleep(0.1)

    def _send(self, rid, cmd, limit):
        line = f"{rid} {int(limit)} {base64.b64encode(cmd.encode()).decode()}\n".encode()
        self.sock.sendall(line)

    def _read_reply(self, rid, deadline):
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 1:]
                parts = line.decode(errors="replace").split(" ")
                if parts[0] == rid and len(parts) >= 2:
                    out = base64.b64decode(parts[2]) if len(parts) > 2 else b""
                    err = base64.b64decode(parts[3]) if len(parts) > 3 else b""
                    return int(parts[1]), out.decode(errors="replace"), err.decode(errors="replace")
                continue            # a reply to an earlier, abandoned request
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            if not data:
                self.close()
                raise ConnectionError("agent connection closed")
            self.buf += data

    def call(self, cmd: str, timeout: float) -> Result:
        deadline = time.monotonic() + timeout + 10
        self._connect(deadline)
        rid = uuid.uuid4().hex[:12]
        self._send(rid, cmd, timeout)
        got = self._read_reply(rid, deadline)
        if got is None:
            raise VMError(f"no reply from the VM agent within {timeout + 10:.0f} s to: {cmd}")
        return Result(cmd, *got)

    def wait(self, timeout: float):
        """Wait until the agent in the guest answers (it starts early at boot)."""
        deadline = time.monotonic() + timeout
        # one id for every probe: on a loaded host an answer can take more
        # than the 1 s between probes, and must still count
        rid = uuid.uuid4().hex[:12]
        while True:
            self._connect(deadline)
            try:
                self._send(rid, "echo ok", 10)
                got = self._read_reply(rid, min(deadline, time.monotonic() + 1.0))
            except (ConnectionError, OSError):
                self.close()
                got = None
            if got and got[1].strip() == "ok":
                return
            if time.monotonic() > deadline:
                raise VMError(f"the VM agent did not answer within {timeout:.0f} s")


# ---------------------------------------------------------------- VM

class VM:
    def __init__(self, lab: "Lab", name: str, index: int, *, memory="768M"):
        self.lab, self.name, self.index, self.memory = lab, name, index, memory
        self.dir = lab.dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.overlay = self.dir / "disk.qcow2"
        self.console = self.dir / "console.log"
        self.agent_sock = self.dir / "agent.sock"
        self.net_sock = lab.dir / f"l2-{name}.sock"
        self.address = f"{L2_PREFIX}.{index}"
        self.mac = f"52:54:00:77:00:{index:02x}"
        self.proc: subprocess.Popen | None = None
        self.agent = Agent(self.agent_sock)
        self.boots = 0
        self.boot_started = 0.0
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
             "-b", lab.image.base, self.overlay])

    # --- life cycle
    def start(self, payload: Payload | None = None):
        assert self.proc is None, f"{self.name} is running"
        self.boots += 1
        drives = ["-drive", f"file={self.overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap"]
        if payload is not None:
            tar = self.dir / f"payload-{self.boots}.tar"
            payload.write(tar)
            drives += ["-drive", f"file={tar},if=virtio,format=raw,readonly=on"]
        remote = self.lab.switch.path
        if self.net_sock.exists():
            self.net_sock.unlink()
        if self.agent_sock.exists():
            self.agent_sock.unlink()
        img = self.lab.image
        append = ("console=ttyS0 root=/dev/vda rw net.ifnames=0 panic=-1 quiet loglevel=4 "
                  "systemd.show_status=1 systemd.journald.forward_to_console=1 "
                  "systemd.log_color=0")
        argv = ["qemu-system-x86_64", "-name", self.name, "-accel", "tcg", "-cpu", "max",
                "-smp", "1", "-m", self.memory, "-nodefaults", "-display", "none",
                "-no-reboot", "-kernel", img.kernel, "-initrd", img.initrd, "-append", append,
                *drives,
                "-netdev", f"dgram,id=l2,local.type=unix,local.path={self.net_sock},"
                           f"remote.type=unix,remote.path={remote}",
                "-device", f"virtio-net-pci,netdev=l2,mac={self.mac}",
                "-device", "virtio-rng-pci",
                "-device", "virtio-serial-pci",
                "-chardev", f"socket,id=agent,path={self.agent_sock},server=on,wait=off",
                "-device", "virtserialport,chardev=agent,name=org.meshd.agent",
                "-serial", f"file:{self.console}"]
        self.console.write_text("")
        self.qemu_log = open(self.dir / "qemu.log", "a")
        self.boot_started = time.monotonic()
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                     stdout=self.qemu_log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        (self.dir / "qemu.pid").write_text(f"{self.proc.pid}\n")
        self.lab.log(f"{self.name}: qemu pid {self.proc.pid} (boot {self.boots})")

    def wait_booted(self, timeout=240.0) -> str:
        """Wait for the agent, then for the boot to finish; returns the
        state of `systemctl is-system-running`."""
        deadline = time.monotonic() + timeout
        try:
            self.agent.wait(timeout)
        except VMError:
            self._check_alive()
            raise
        left = max(5, deadline - time.monotonic())
        r = self.sh("systemctl is-system-running --wait", timeout=left)
        state = r.stdout.strip()
        self.lab.log(f"{self.name}: {state} after {time.monotonic() - self.boot_started:.1f} s")
        return state

    def _check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise VMError(f"qemu for {self.name} exited with status {self.proc.returncode}:\n"
                          + (self.dir / "qemu.log").read_text(errors="replace")[-2000:]
                          + "\nconsole:\n" + self.console_tail())

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def save_journal(self):
        """Keep the journal of this boot in the lab's results directory."""
        if not (self.running() and self.lab.results):
            return
        try:
            self.lab.results.mkdir(parents=True, exist_ok=True)
            text = self.sh("journalctl -b --no-pager -o short-monotonic", timeout=60).stdout
            (self.lab.results / f"{self.name}-boot{self.boots}.journal").write_text(text)
        except Exception as e:
            self.lab.log(f"{self.name}: cannot save the journal: {e}")

    def poweroff(self, timeout=90.0):
        if not self.running():
            self._reap()
            return
        self.save_journal()
        try:
            self.sh("systemctl --no-block poweroff", timeout=10)
        except (VMError, OSError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.lab.log(f"{self.name}: no power-off within {timeout:.0f} s, killing qemu")
        self.kill()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._reap()

    def _reap(self):
        self.agent.close()
        if self.proc is not None:
            self.qemu_log.close()
        self.proc = None

    # --- talking to it
    def sh(self, cmd: str, *, timeout: float = 60.0, check=False) -> Result:
        """Run a shell command (bash) in the VM as root."""
        if not self.running():
            self._check_alive()
            raise VMError(f"{self.name} is not running")
        try:
            r = self.agent.call(cmd, timeout)
        except ConnectionError:
            self._check_alive()
            raise
        return r.check() if check else r

    def journal(self, *args: str) -> list[dict]:
        """Journal entries of the current boot (journalctl -o json)."""
        r = self.sh("journalctl -b --no-pager -o json " + " ".join(args), timeout=120)
        out = []
        for line in r.stdout.splitlines():
            if line.strip():
                e = json.loads(line)
                if isinstance(e.get("MESSAGE"), list):      # binary message
                    e["MESSAGE"] = bytes(e["MESSAGE"]).decode(errors="replace")
                out.append(e)
        return out

    def journal_text(self, args: str = "", lines: int | None = None) -> str:
        n = f"-n {lines}" if lines else ""
        return self.sh(f"journalctl -b --no-pager -o short-monotonic {n} {args}", timeout=120).stdout

    def console_tail(self, n=4000) -> str:
        try:
            return self.console.read_text(errors="replace")[-n:]
        except FileNotFoundError:
            return ""

    def debug_report(self, lines=150) -> str:
        """What to print when a test fails: the end of the journal of the
        running VM (the whole one is saved, see conftest.py), or the end of
        the console of one that is off or whose agent broke."""
        if self.running():
            try:
                return self.journal_text(lines=lines)
            except Exception as e:          # the agent may be what broke
                return f"(journal unavailable: {e})\nconsole:\n" + self.console_lines(lines)
        return "(powered off) console:\n" + self.console_lines(30)

    def console_lines(self, n) -> str:
        kept = [line for line in self.console_tail(200000).splitlines() if line.strip()]
        return "\n".join(kept[-n:])


class Switch:
    """The private L2 of a lab: a hub that floods every Ethernet frame it
    gets from one VM's qemu (`-netdev dgram` over a Unix datagram socket)
    to the sockets of all the other VMs. No host interface is involved,
    and a VM that is off simply misses its frames."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.path = directory / "l2-switch.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.ports: list[str] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="l2-switch", daemon=True)
        self.thread.start()

    def add_port(self, path: Path):
        self.ports.append(str(path))

    def _loop(self):
        self.sock.settimeout(0.5)
        while not self.stopping:
            try:
                frame, sender = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            for port in self.ports:
                if port != sender:
                    try:
                        self.sock.sendto(frame, port)
                    except OSError:
                        pass            # that VM is off

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


class Lab:
    """A test run: a directory with the VMs' disks and sockets."""

    def __init__(self, image, workdir: Path, results: Path | None = None):
        self.image = image
        self.results = results
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vms: dict[str, VM] = {}
        self.t0 = time.monotonic()
        (self.dir / "owner.pid").write_text(f"{os.getpid()}\n")
        self.switch = Switch(self.dir)

    def log(self, msg):
        print(f"[vm {time.monotonic() - self.t0:6.1f}] {msg}", flush=True)

    def add_vm(self, name: str, index: int, **kw) -> VM:
        vm = VM(self, name, index, **kw)
        self.vms[name] = vm
        self.switch.add_port(vm.net_sock)
        return vm

    def close(self):
        for vm in self.vms.values():
            vm.kill()
        self.switch.close()
        shutil.rmtree(self.dir, ignore_errors=True)


LAB_PREFIX = "meshd-vm-"


def sweep_stale(tmp: Path = Path("/tmp")):
    """Kill the qemu processes and remove the run directories left by an
    earlier run that died without cleaning up (its owner process is gone).
    Only processes whose command line names that run directory are touched."""
    for d in tmp.glob(LAB_PREFIX + "*"):
        try:
            owner = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{owner}").exists():
            continue
        for pidfile in d.glob("*/qemu.pid"):
            try:
                pid = int(pidfile.read_text())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except (OSError, ValueError):
                continue
            if "qemu-system" in cmdline and str(d) in cmdline:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        shutil.rmtree(d, ignore_errors=True)


def check_host():
    """Everything the suite needs on the host; raises (a failure, never a skip)."""
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4",
                           "busybox", "meson", "ninja") if not shutil.which(t)]
    if missing:
        raise VMError(f"missing on the host: {', '.join(missing)} (run tools/setup as root)")
    if os.geteuid() != 0:
        raise VMError("the VM suite must run as root (debootstrap, image build)")


# ---------------------------------------------------------------- journal

def mono(e) -> int:
    return int(e["__MONOTONIC_TIMESTAMP"])


def messages(entries):
    return "\n".join(f"{mono(e) / 1e6:10.3f} {e.get('SYSLOG_IDENTIFIER', '?')}: {e.get('MESSAGE', '')}"
                     for e in entries)
