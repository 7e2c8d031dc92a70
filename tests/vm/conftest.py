# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures of the VM suite: three qemu VMs with systemd as PID 1.

Topology: three VMs on a private L2 (qemu `-netdev dgram` over Unix
sockets, joined by a flooding hub in the test process, vmlab.Switch; no
host interface is touched):

    control 192.168.77.3  meshd-control (its database made on the host with
                          `meshd-control init`, so pin and auth key are
                          known before any VM boots)
    nas     192.168.77.1  meshd (joins as "nas") + kernel nfsd exporting
                          /export to the mesh ranges only
    client  192.168.77.2  `systemctl enable meshd`, `meshctl nss enable`
                          and three fstab lines; nothing else
    pkg     192.168.77.4  test_package.py: the .debs installed, joined,
                          rebooted and purged while systemd runs

Every VM gets meshd the way a user does: `apt-get install ./….deb` of the
packages that tests/package/build-debs makes from this tree (tools/test's
package suite hands its own over in $MESHD_VM_DEBS), in the payload's
setup (a chroot before systemd starts: nothing is started, enable
symlinks, sysusers and the nsswitch entry are made as on a live system).

VMs rather than network namespaces: kernel nfsd, autofs and systemd as
PID 1 are what the scenarios are about. The control server has a VM of
its own because its hub interface (100.64.0.1/10) and a node's mesh0 on
one host both route 100.64.0.0/10, and the node's replies then leave
through the hub (a known problem, reported, not what this suite checks).
With the nas a separate machine, "peer down" is "power the nas off".
control and nas boot together; the client boots once nas has joined (its
mesh address goes into the client's fstab).

Everything (VMs, overlays, sockets) lives in a temporary directory that is
removed at the end, failures included; qemu runs in its own session and
is killed by process group; a run that died is swept at the next start.
The base image is cached (image.py).
"""

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import image  # noqa: E402
import vmlab  # noqa: E402

CONTROL_URL = "https://192.168.77.3:8443"
RESULTS = vmlab.REPO / "build" / "test-results" / "vm"

# [Online] of the client: nas is required; TimeoutSec short so that the
# peer-down boot is quick (then READY=1 with STATUS=degraded).
CLIENT_ONLINE_TIMEOUT = 20

_labs = []


def pytest_sessionstart(session):
    # `timeout` and CI runners send SIGTERM: unwind like Ctrl-C so that the
    # finalizers kill qemu and remove the run directory.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    vmlab.sweep_stale()


@atexit.register
def _last_resort():
    for lab in _labs:
        lab.close()


def network_file(vm):
    return (f"[Match]\nMACAddress={vm.mac}\n\n[Network]\nAddress={vm.address}/24\n"
            "LinkLocalAddressing=ipv6\n")


# Where the payload puts the .debs in a VM.
VM_DEBS = "/var/cache/meshd-debs"


def debs_dir(tree: Path) -> Path:
    """The .debs next to the unpacked tree of the `tree` fixture."""
    return tree.parent / "debs"


def add_debs(p: vmlab.Payload, tree: Path):
    for deb in sorted(debs_dir(tree).glob("*.deb")):
        p.add_file(f"{VM_DEBS}/{deb.name}", deb.read_bytes())


def install_command(*packages: str, fast: bool = False) -> str:
    """`apt-get install` of the given packages' .debs from VM_DEBS (no
    network in the VMs: every dependency is in the image already). fast:
    for the payload's setup, where the install is not what is tested and
    TCG makes every fsync and man-db's index update cost seconds."""
    debs = " ".join(f"{VM_DEBS}/{name}_*.deb" for name in packages)
    cmd = f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 {debs}"
    if fast:
        cmd = ("rm -f /var/lib/man-db/auto-update\n"
               + cmd.replace("apt-get install", "apt-get install -o Dpkg::Options::=--force-unsafe-io"))
    return cmd


def base_payload(vm, tree: Path, hostname: str,
                 packages=("meshd", "libnss-mesh", "meshd-control")) -> vmlab.Payload:
    p = vmlab.Payload()
    add_debs(p, tree)
    p.add_file("/etc/hostname", hostname + "\n")
    p.add_file("/etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {hostname}\n::1 localhost\n")
    p.add_file("/etc/systemd/network/10-l2.network", network_file(vm))
    p.add_setup("systemd-machine-id-setup")
    if packages:
        p.add_setup(install_command(*packages, fast=True))
    return p


@pytest.fixture(scope="session")
def host_ok():
    vmlab.check_host()      # a missing tool is an error, never a skip


@pytest.fixture(scope="session")
def vm_image(host_ok):
    t = time.monotonic()
    img = image.ensure_image()
    print(f"\n[vm] image {img.path.name} ready in {time.monotonic() - t:.1f} s "
          f"(kernel {img.kernel_version})")
    return img


@pytest.fixture(scope="session")
def tree(host_ok):
    """This tree's .debs (debs_dir(tree)) and, in tree, meshd and
    meshd-control unpacked from them (the host runs meshd-control init
    from there). The .debs are $MESHD_VM_DEBS's when set (tools/test's
    package suite), else built here with tests/package/build-debs."""
    d = Path(tempfile.mkdtemp(prefix="meshd-vmtree-", dir="/tmp"))
    t = time.monotonic()
    try:
        debs = d / "debs"
        if os.environ.get("MESHD_VM_DEBS"):
            debs.mkdir()
            for deb in Path(os.environ["MESHD_VM_DEBS"]).glob("*.deb"):
                if "-dbgsym_" not in deb.name:
                    shutil.copy(deb, debs)
        else:
            cp = vmlab.run([vmlab.REPO / "tests/package/build-debs", debs], check=False,
                           capture_output=True, text=True, env={**os.environ, "MESHD_DEB_LINTIAN": "0"})
            assert cp.returncode == 0, cp.stdout[-6000:] + cp.stderr[-3000:]
            for deb in debs.glob("*-dbgsym_*.deb"):
                deb.unlink()
        for name in ("meshd", "meshd-control", "libnss-mesh"):
            assert len(list(debs.glob(f"{name}_*.deb"))) == 1, f"no (or several) {name} .deb in {debs}"
            vmlab.run(["dpkg-deb", "-x", next(debs.glob(f"{name}_*.deb")), d / "root"])
        print(f"\n[vm] .debs ready in {time.monotonic() - t:.1f} s")
        yield d / "root"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(vm_image):
    d = Path(tempfile.mkdtemp(prefix=vmlab.LAB_PREFIX, dir="/tmp"))
    shutil.rmtree(RESULTS, ignore_errors=True)
    the_lab = vmlab.Lab(vm_image, d, results=RESULTS)
    _labs.append(the_lab)
    try:
        yield the_lab
    finally:
        if os.environ.get("MESHD_VM_HOLD"):
            _hold(the_lab, Path(os.environ["MESHD_VM_HOLD"]))
        for vm in the_lab.vms.values():
            vm.poweroff(timeout=30)
        the_lab.close()
        _labs.remove(the_lab)


def _hold(lab, d: Path):
    """Debugging aid: with MESHD_VM_HOLD=DIR, keep the VMs running at the
    end and run commands for a person: write "VMNAME\\nCOMMAND" into
    DIR/NAME.cmd, read DIR/NAME.out; touch DIR/done to finish."""
    d.mkdir(parents=True, exist_ok=True)
    lab.log(f"holding the VMs; commands in {d}/*.cmd, touch {d}/done to end")
    while not (d / "done").exists():
        for c in sorted(d.glob("*.cmd")):
            name, _, cmd = c.read_text().partition("\n")
            c.unlink()
            try:
                r = lab.vms[name.strip()].sh(cmd, timeout=300)
                out = f"rc={r.returncode}\n{r.stdout}\n--- stderr\n{r.stderr}"
            except Exception as e:
                out = f"error: {e}"
            c.with_suffix(".tmp").write_text(out)
            c.with_suffix(".tmp").rename(c.with_suffix(".out"))
        time.sleep(0.2)
    (d / "done").unlink()


class Nas:
    def __init__(self, vm):
        self.vm = vm
        self.ipv4 = self.ipv6 = None


CERT_LIFETIME_SEC = 45


class ControlState:
    """meshd-control's state, made on the host before the control VM boots."""

    def __init__(self, tree: Path, workdir: Path):
        self.dir = workdir / "meshd-control"
        exe = tree / "usr/bin/meshd-control"
        base = [str(exe), "--state-dir", str(self.dir)]
        cp = vmlab.run(base + ["init", "--url", CONTROL_URL], capture_output=True, text=True)
        self.pin = next((x for x in cp.stdout.split() if x.startswith("sha256//")), None)
        cp = vmlab.run(base + ["authkey", "create", "--reusable"], capture_output=True, text=True)
        self.authkey = cp.stdout.split()[0] if cp.stdout.split() else ""
        assert self.pin and self.authkey.startswith("mskey-"), cp.stdout + cp.stderr


@pytest.fixture(scope="session")
def control(lab, tree):
    """The control VM (started; the nas fixture waits for its boot)."""
    state = ControlState(tree, lab.dir)
    vm = lab.add_vm("control", 3, memory="512M")
    p = base_payload(vm, tree, "control", packages=("meshd-control",))
    p.add_tree_at(state.dir, "var/lib/meshd-control")
    # short-lived node certificates, so that the nas renews during the run
    p.add_file("/etc/systemd/system/meshd-control.service.d/cert-lifetime.conf",
               f"[Service]\nExecStart=\nExecStart=/usr/bin/meshd-control serve "
               f"--cert-lifetime={CERT_LIFETIME_SEC}s\n")
    p.add_setup("systemctl enable meshd-control.service")
    vm.start(p)
    vm.state = state
    return vm


@pytest.fixture(scope="session")
def nas(lab, tree, control):
    """The nas VM: meshd joined as "nas", nfsd exporting /export."""
    vm = lab.add_vm("nas", 1)
    p = base_payload(vm, tree, "nas")
    p.add_file("/export/hello.txt", "hello from nas\n")
    # only mesh addresses may mount: a mount that bypassed the tunnel fails
    p.add_file("/etc/exports",
               "/export 100.64.0.0/10(rw,sync,no_subtree_check,no_root_squash) "
               "fc00::/7(rw,sync,no_subtree_check,no_root_squash)\n")
    p.add_file("/etc/meshd/authkey", control.state.authkey + "\n", 0o600)
    p.add_file("/etc/meshd/meshd.conf", f"""\
[Mesh]
ControlURL={CONTROL_URL}
ControlPin={control.state.pin}
AuthKeyFile=/etc/meshd/authkey
KeepInterface=yes

[Certificate]
ReloadCommand=cp "$MESHD_FULLCHAIN_FILE" /var/lib/meshd/hook-copy.pem
""")
    # a service that uses the certificate: meshd-reload@probe.path reloads it
    p.add_file("/etc/systemd/system/probe.service", """\
[Service]
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'date +%%s.%%N >> /var/tmp/probe-reloads'
[Install]
WantedBy=multi-user.target
""")
    p.add_setup("chmod 0777 /export\nsystemctl enable meshd.service nfs-server.service probe.service "
                "meshd-reload@probe.path")
    vm.start(p)
    state = vm.wait_booted(timeout=400)   # it waits for control, which boots alongside
    control.boot_state = control.wait_booted()
    assert control.sh("systemctl is-active meshd-control").stdout.strip() == "active", \
        control.journal_text("-u meshd-control")
    n = Nas(vm)
    # joined: the node has its mesh address
    deadline = time.monotonic() + 60
    st = {}
    while time.monotonic() < deadline:
        r = vm.sh("meshctl status --json")
        if r.returncode == 0:
            st = json.loads(r.stdout).get("self", {})
            if st.get("ipv4"):
                break
        time.sleep(1)
    assert st.get("ipv4"), (f"nas did not join (boot state {state}):\n"
                            + vm.journal_text("-u meshd"))
    n.ipv4, n.ipv6, n.status = st["ipv4"], st.get("ipv6"), st
    n.pin, n.authkey = control.state.pin, control.state.authkey
    lab.log(f"nas joined as {st.get('name')} {n.ipv4} backend={st.get('backend')}")
    return n


CLIENT_FSTAB = """\
nas.mesh.internal:/export /mnt/a nfs4 _netdev,x-systemd.requires=mesh-online.target 0 0
nas:/export /mnt/b mesh.nfs4 defaults 0 0
{nas_ipv4}:/export /mnt/c nfs4 x-meshd.peer=nas,x-systemd.automount 0 0
"""


@pytest.fixture(scope="session")
def client(lab, tree, nas):
    """The client VM, booted once with only `systemctl enable meshd`,
    `meshctl nss enable` and the three fstab lines of CLIENT_FSTAB."""
    vm = lab.add_vm("client", 2)
    p = base_payload(vm, tree, "client")
    p.add_file("/etc/fstab", image.FSTAB + CLIENT_FSTAB.format(nas_ipv4=nas.ipv4))
    p.add_file("/etc/meshd/authkey", nas.authkey + "\n", 0o600)
    p.add_file("/etc/meshd/meshd.conf", f"""\
[Mesh]
ControlURL={CONTROL_URL}
ControlPin={nas.pin}
AuthKeyFile=/etc/meshd/authkey
KeepInterface=yes

[Online]
Policy=required
RequiredPeers=nas
TimeoutSec={CLIENT_ONLINE_TIMEOUT}
""")
    p.add_setup("systemctl enable meshd.service\nmeshctl nss enable")
    vm.start(p)
    vm.boot_state = vm.wait_booted()
    return vm


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _labs:
        for vm in _labs[-1].vms.values():
            try:
                rep.sections.append((f"journal of VM {vm.name} (boot {vm.boots}, last 400 lines)",
                                     vm.debug_report()))
            except Exception as e:
                rep.sections.append((f"VM {vm.name}", f"no journal: {e}"))
