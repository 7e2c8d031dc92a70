# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Debian packages on a running system (issue 18).

One VM, "pkg", boots the plain image with only the .debs in it. Then, with
systemd running, as an admin would: `apt-get install ./….deb`, `systemctl
enable --now meshd`, `meshctl up` (join), reboot, mesh-online.target is
reached; `apt-get purge` leaves no unit, group, nsswitch entry, interface
or file behind (compared with a listing of the file system made before
the installation). The node is removed from the control server at the
end, so that the other tests' meshes are as before.
"""

import time

import pytest

from conftest import CONTROL_URL, base_payload, install_command

PACKAGES = ("meshd", "libnss-mesh", "meshd-control")

# What the file system listing leaves out: virtual and volatile trees, and
# what apt, dpkg, the journal and systemd keep about themselves.
LISTING = ("find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp "
           "-o -path /var/tmp -o -path /var/log -o -path /var/cache/apt -o -path /var/lib/apt "
           "-o -path /var/lib/dpkg -o -path /var/cache/debconf -o -path /var/cache/man "
           "-o -path /var/lib/systemd \\) -prune -o -print | sort")


# A service of the admin's that needs the mesh (systemd.meshd(7)).
USES_VPN = """\
[Unit]
Wants=mesh-online.target
After=mesh-online.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
"""

# Written by systemd-sysusers and groupdel whenever they change the user
# database (lock and backup copies), whoever asks them to.
SHADOW_FILES = {"/etc/.pwd.lock", "/etc/group-", "/etc/gshadow-", "/etc/passwd-", "/etc/shadow-"}


@pytest.fixture(scope="module")
def pkg(lab, tree, control, nas):
    """The pkg VM booted, nothing installed; nas and control up (a peer to
    be online with). It boots after them: three TCG VMs booting at once on
    two cores would slow all of them down more than it saves."""
    vm = lab.add_vm("pkg", 4, memory="512M")
    p = base_payload(vm, tree, "pkg", packages=())
    # what pulls mesh-online.target into the boot, as a mount would
    p.add_file("/etc/systemd/system/uses-vpn.service", USES_VPN)
    # man-db's index is no part of the test, and costs TCG many seconds
    p.add_setup("systemctl enable uses-vpn.service\nrm -f /var/lib/man-db/auto-update")
    t = time.monotonic()
    vm.start(p)
    vm.boot_state = vm.wait_booted(timeout=400)
    vm.boot_seconds = time.monotonic() - t
    vm.nas = nas
    yield vm
    control.sh("meshd-control nodes remove pkg")
    vm.poweroff()


@pytest.fixture(scope="module")
def installed(pkg):
    """Before: the listing and nsswitch.conf. Then install, enable, join."""
    vm = pkg
    vm.before = vm.sh(LISTING, timeout=120, check=True).stdout.splitlines()
    vm.nsswitch = vm.sh("cat /etc/nsswitch.conf", check=True).stdout
    t = time.monotonic()
    r = vm.sh(install_command(*PACKAGES), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    vm.install_seconds = time.monotonic() - t
    units = "meshd.service meshd-control.service"
    vm.after_install = (vm.sh(f"systemctl is-enabled {units}").stdout.split(),
                        vm.sh(f"systemctl is-active {units}").stdout.split())
    vm.sh("systemctl enable --now meshd", check=True)
    nas = vm.nas
    r = vm.sh(f"meshctl up --server={CONTROL_URL} --authkey={nas.authkey} --pin={nas.pin}",
              timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr + vm.journal_text("-u meshd", lines=60)
    return vm


def status(vm):
    import json
    r = vm.sh("meshctl status --json")
    return json.loads(r.stdout) if r.returncode == 0 else {}


def test_install_sets_up_group_nsswitch_and_units(installed):
    vm = installed
    print(f"\n[vm] pkg booted in {vm.boot_seconds:.0f} s; apt-get install of "
          f"{len(PACKAGES)} .debs: {vm.install_seconds:.1f} s")
    assert vm.sh("getent group meshd").returncode == 0
    hosts = [x for x in vm.sh("cat /etc/nsswitch.conf").stdout.splitlines() if x.startswith("hosts:")]
    assert hosts and hosts[0].split()[1:3] == ["files", "mesh"], hosts
    # installed, neither enabled nor started: the admin configures first,
    # then `systemctl enable --now meshd` (README); meshd-control needs
    # `meshd-control init` first
    assert vm.after_install == (["disabled", "disabled"], ["inactive", "inactive"]), vm.after_install
    assert vm.sh("systemctl is-enabled meshd.service").stdout.strip() == "enabled"


def test_api_socket_is_in_group_meshd(installed):
    """docs/api.md: the socket is in group meshd when that group exists
    (the package makes it, before meshd first starts)."""
    vm = installed
    r = vm.sh("stat -c %G /run/meshd/io.meshd.sock")
    assert r.stdout.strip() == "meshd", \
        vm.sh("stat -c '%A %G %n' /run/meshd /run/meshd/*; getent group meshd").stdout + \
        vm.journal_text("-u meshd", lines=40)


def test_joined_and_resolves_peer_by_name(installed):
    vm = installed
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not status(vm).get("self", {}).get("ipv4"):
        time.sleep(1)
    st = status(vm).get("self", {})
    assert st.get("ipv4"), vm.journal_text("-u meshd", lines=80)
    # libnss-mesh's nsswitch entry at work
    r = vm.sh("getent ahostsv4 nas")
    assert r.returncode == 0 and vm.nas.ipv4 in r.stdout, r.stdout + r.stderr


@pytest.fixture(scope="module")
def rebooted(installed):
    vm = installed
    vm.poweroff()
    t = time.monotonic()
    vm.start()
    vm.boot_state = vm.wait_booted(timeout=400)
    vm.reboot_seconds = time.monotonic() - t
    return vm


def test_reboot_reaches_mesh_online_target(rebooted):
    vm = rebooted
    print(f"\n[vm] pkg rebooted to {vm.boot_state} in {vm.reboot_seconds:.0f} s")
    assert vm.sh("systemctl is-active mesh-online.target").stdout.strip() == "active", \
        vm.journal_text("-u meshd", lines=80)
    assert vm.sh("systemctl is-active meshd.service uses-vpn.service").stdout.split() == \
        ["active", "active"]
    assert status(vm)["self"]["state"] == "online", status(vm)


@pytest.fixture(scope="module")
def purged(rebooted):
    vm = rebooted
    r = vm.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o Dpkg::Use-Pty=0 "
              + " ".join(PACKAGES), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return vm


def test_purge_leaves_no_packages_units_or_group(purged):
    vm = purged
    r = vm.sh("dpkg-query -W -f='${Package} ${Status}\\n' " + " ".join(PACKAGES))
    assert "installed" not in r.stdout and "config-files" not in r.stdout, r.stdout
    # (the image's own meshd-vm-agent.service and meshd-vm.conf are no package's)
    r = vm.sh("systemctl list-unit-files --no-legend 'mesh*' | grep -v '^meshd-vm-agent'")
    assert r.stdout.strip() == "", r.stdout
    # loaded units: none (uses-vpn.service still names mesh-online.target,
    # which systemd then lists as not-found)
    r = vm.sh("systemctl list-units --all --plain --no-legend 'mesh*' | grep -v 'meshd-vm-agent'")
    assert [x for x in r.stdout.splitlines() if x.split()[1] != "not-found"] == [], r.stdout
    r = vm.sh("find /etc/systemd /usr/lib/systemd /lib/systemd -name '*mesh*' | grep -v meshd-vm")
    assert r.stdout.strip() == "", r.stdout
    assert vm.sh("getent group meshd").returncode != 0
    assert vm.sh("getent passwd meshd").returncode != 0
    assert vm.sh("ip link show mesh0").returncode != 0


def test_purge_restores_nsswitch(purged):
    assert purged.sh("cat /etc/nsswitch.conf").stdout == purged.nsswitch


def test_purge_leaves_no_files(purged):
    vm = purged
    after = vm.sh(LISTING, timeout=120, check=True).stdout.splitlines()
    left = sorted(set(after) - set(vm.before) - SHADOW_FILES)
    assert left == [], "\n".join(left)
    r = vm.sh("ls -d /run/meshd /var/lib/meshd /var/lib/meshd-control /etc/meshd 2>&1")
    assert r.stdout.count("No such file") == 4, r.stdout
