# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 4 scenarios: names at boot. Programs that know nothing of meshd
(getent, ping) resolve NAME and NAME.mesh.internal through libnss_mesh.

Each command runs in a node's network namespace and in a private mount
namespace of its own (unshare --mount, private propagation) in which a
test nsswitch.conf with `hosts: files mesh dns` is bind-mounted over
/etc/nsswitch.conf. Nothing of the host changes: the mounts vanish with
the command. Two ways to load the module:

- development: LD_LIBRARY_PATH=build/src/nss and MESHD_HOSTS_FILE=the
  node's RUNTIME_DIR/hosts. Commands run as root, so glibc is not in
  secure mode (no AT_SECURE, even for ping with file capabilities) and
  honours both; the tests check AT_SECURE to be sure.
- installed: a read-only overlay puts libnss_mesh.so.2 into the multiarch
  library directory and the node's runtime dir is bind-mounted on
  /run/meshd, as on a real machine; ping then runs as nobody, where its
  file capabilities put glibc in secure mode, which ignores
  LD_LIBRARY_PATH and (secure_getenv) MESHD_HOSTS_FILE.

The names used (nas, nas.mesh.internal, ...) exist nowhere but in
meshd's table: no DNS is reachable from the namespaces and /etc/hosts
does not know them, and the same lookups fail with an nsswitch.conf
without "mesh" (checked).
"""

import ipaddress
import re
import time
from pathlib import Path

import pytest

import meshlab
from meshlab import wait_until

PROPAGATION_S = 2.0     # a removed node stops resolving within 2 s

NSS_LIBRARY = meshlab.NSS_LIBRARY
NSSWITCH_PLAIN = meshlab.NSSWITCH_PLAIN
Resolver = meshlab.NssResolver


def write_conf(lab, node, with_mesh: bool) -> Path:
    """nsswitch.conf for the test; with_mesh: edited by `meshctl nss enable`
    and checked to be exactly Debian's line with mesh after files."""
    path = meshlab.write_nsswitch(lab, node, with_mesh)
    if with_mesh:
        assert path.read_text() == NSSWITCH_PLAIN.replace("hosts:          files dns",
                                                          "hosts:          files mesh dns"), path.read_text()
    return path


def first_address(ping_output: str) -> str:
    """The address ping resolved, from its first line: "PING nas.mesh.internal
    (100.64.0.3) ..." or "PING nas.mesh.internal(nas.mesh.internal (fd7a::3)) ..."."""
    first = ping_output.splitlines()[0] if ping_output else ""
    for candidate in re.findall(r"\(([0-9A-Fa-f.:]+)\)", first):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    raise AssertionError(f"no address in ping's first line: {first!r}")


@pytest.fixture
def named_mesh(lab, control):
    """client, nas and backup joined and READY, each with the others in its
    hosts table; returns (nodes by name, Status by name)."""
    if not NSS_LIBRARY.exists():
        raise FileNotFoundError(f"{NSS_LIBRARY} is missing: build it first")
    key = control.authkey(reusable=True)
    nodes = {n: lab.add_node(n, authkey=key) for n in ("client", "nas", "backup")}
    for n in nodes.values():
        n.start()
    for n in nodes.values():
        n.wait_ready(30)
    # READY (policy any) means one peer answers; ping tests need them all.
    for n in nodes.values():
        wait_until(lambda: n.status().get("peers_reachable") == len(nodes) - 1, 20,
                   what=f"{n.name} reaching all its peers")
    status = {name: n.status() for name, n in nodes.items()}
    for n in nodes.values():
        hosts = n.runtime_dir / "hosts"
        wait_until(lambda: hosts.exists() and all(f"\t{s['name']} " in hosts.read_text()
                                                  for s in status.values()),
                   10, what=f"{n.name}'s hosts table with all three nodes")
    return nodes, status


def test_getent_resolves_names_through_the_module(lab, control, named_mesh):
    """`getent hosts nas`, `getent ahosts nas.mesh.internal` (both families),
    reverse lookups and the node's own name answer from meshd's table, in
    any case and with a trailing dot; unknown names fail; and without
    "mesh" in nsswitch.conf none of it resolves."""
    nodes, status = named_mesh
    client = nodes["client"]
    nss = Resolver(lab, client, write_conf(lab, client, True))
    plain = Resolver(lab, client, write_conf(lab, client, False))
    nas = status["nas"]
    nas_addresses = {nas["ipv4"]} | ({nas["ipv6"]} if nas.get("ipv6") else set())

    # Without the module nothing knows these names.
    for name in ("nas", "nas.mesh.internal"):
        assert plain.getent("hosts", name).returncode == 2, f"{name} resolves without mesh"

    cp = nss.getent("hosts", "nas")
    assert cp.returncode == 0, f"getent hosts nas: rc {cp.returncode} {cp.stderr.strip()}"
    fields = cp.stdout.split()
    assert fields[0] in nas_addresses, cp.stdout
    assert fields[1:] == ["nas.mesh.internal", "nas"], cp.stdout

    assert nss.addresses("ahosts", "nas.mesh.internal") == nas_addresses
    assert nss.addresses("ahostsv4", "NAS.Mesh.Internal.") == {nas["ipv4"]}
    if nas.get("ipv6"):
        assert nss.addresses("ahostsv6", "nas") == {nas["ipv6"]}
    cp = nss.getent("ahosts", "nas")
    assert "nas.mesh.internal" in cp.stdout.splitlines()[0], f"canonical name: {cp.stdout}"

    # Every node, the asking one included, by both names.
    for name, s in status.items():
        want = {s["ipv4"]} | ({s["ipv6"]} if s.get("ipv6") else set())
        assert nss.addresses("ahosts", name) == want, name
        assert nss.addresses("ahosts", s["fqdn"]) == want, s["fqdn"]

    # Reverse lookups.
    for address in nas_addresses:
        cp = nss.getent("hosts", address)
        assert cp.returncode == 0 and cp.stdout.split()[1:] == ["nas.mesh.internal", "nas"], cp.stdout

    for unknown in ("ghost", "ghost.mesh.internal", "nas.mesh", "nas.mesh.internal.example"):
        cp = nss.getent("hosts", unknown)
        assert cp.returncode == 2, f"{unknown}: rc {cp.returncode} {cp.stdout.strip()}"


def test_ping_resolves_through_the_module(lab, control, named_mesh):
    """`ping -c1 nas.mesh.internal` (getaddrinfo AF_UNSPEC, -4 and -6) as root:
    glibc is not in secure mode even though ping has file capabilities, so
    the module comes from LD_LIBRARY_PATH; the echo goes through the tunnel
    to nas's mesh address."""
    nodes, status = named_mesh
    client = nodes["client"]
    nss = Resolver(lab, client, write_conf(lab, client, True))
    plain = Resolver(lab, client, write_conf(lab, client, False))
    nas = status["nas"]
    assert client.can_ping(nas["ipv4"], within=10), "no ICMP path to nas at all"

    cp = plain.run("ping", "-c1", "-W2", "nas.mesh.internal")
    assert cp.returncode != 0 and "PING" not in cp.stdout, "ping resolved nas without the module"

    # env sets LD_SHOW_AUXV for ping alone: glibc prints ping's auxiliary
    # vector unless it runs in secure mode.
    cp = nss.run("env", "LD_SHOW_AUXV=1", "ping", "-c1", "-W2", "nas.mesh.internal")
    assert re.search(r"^AT_EXECFN:\s+\S*ping$", cp.stdout, re.M), f"no auxv of ping:\n{cp.stdout}"
    assert re.search(r"^AT_SECURE:\s+0$", cp.stdout, re.M), f"ping as root in secure mode?\n{cp.stdout}"
    assert cp.returncode == 0, f"ping nas.mesh.internal: rc {cp.returncode}\n{cp.stdout}{cp.stderr}"

    variants = [((), {nas["ipv4"], nas.get("ipv6")}), (("-4",), {nas["ipv4"]})]
    if nas.get("ipv6"):
        variants.append((("-6",), {nas["ipv6"]}))
    for flags, want in variants:
        for name in ("nas.mesh.internal", "nas"):
            cp = nss.run("ping", *flags, "-c1", "-W2", name)
            assert cp.returncode == 0, f"ping {' '.join(flags)} {name}: rc {cp.returncode}\n{cp.stdout}{cp.stderr}"
            assert first_address(cp.stdout) in want, f"ping {' '.join(flags)} {name}: {cp.stdout}"


def test_installed_module_in_secure_mode(lab, control, named_mesh):
    """As installed: the module in the loader's directory, the table at
    /run/meshd/hosts. ping as nobody runs in secure mode (file capabilities),
    where LD_LIBRARY_PATH and MESHD_HOSTS_FILE are ignored; it still
    resolves nas, from /run/meshd/hosts. A non-secure program does honour
    MESHD_HOSTS_FILE (secure_getenv)."""
    if meshlab.system_library_dir() is None:
        pytest.skip("no multiarch library directory with libc.so.6 found")
    nodes, status = named_mesh
    client = nodes["client"]
    nss = Resolver(lab, client, write_conf(lab, client, True))
    nas = status["nas"]
    nas_addresses = {nas["ipv4"]} | ({nas["ipv6"]} if nas.get("ipv6") else set())
    bogus = {"MESHD_HOSTS_FILE": str(lab.dir / "no-such-hosts")}

    assert nss.addresses("ahosts", "nas", installed=True) == nas_addresses
    assert nss.getent("hosts", "nas", installed=True, env=bogus).returncode == 2, \
        "getent (not secure) ignored MESHD_HOSTS_FILE"
    assert nss.addresses("ahosts", "nas", installed=True, user=65534) == nas_addresses

    # Secure mode drops LD_SHOW_AUXV (one of glibc's unsecure variables):
    # no auxiliary vector printed means ping ran with AT_SECURE=1.
    cp = nss.run("env", "LD_SHOW_AUXV=1", "ping", "-4", "-c1", "-W2", "nas.mesh.internal",
                 installed=True, user=65534, env={**bogus, "LD_LIBRARY_PATH": str(lab.dir)})
    if re.search(r"^AT_SECURE:\s+0$", cp.stdout, re.M):
        pytest.skip("ping has neither file capabilities nor setuid here: no secure mode to test")
    assert "AT_SECURE" not in cp.stdout, cp.stdout
    assert cp.returncode == 0, f"ping as nobody: rc {cp.returncode}\n{cp.stdout}{cp.stderr}"
    assert first_address(cp.stdout) == nas["ipv4"], cp.stdout


def test_removed_node_stops_resolving_within_2s(lab, control, named_mesh):
    """`meshd-control nodes remove backup` → `getent hosts backup` fails on
    the other nodes within 2 s; the others still resolve."""
    nodes, status = named_mesh
    resolvers = {n: Resolver(lab, nodes[n], write_conf(lab, nodes[n], True)) for n in ("client", "nas")}
    for r in resolvers.values():
        assert r.addresses("hosts", "backup"), f"{r.node.name}: backup does not resolve before removal"

    control.remove_node("backup")
    removed_at = time.monotonic()
    gone = {}
    while len(gone) < len(resolvers):
        for name, r in resolvers.items():
            if name not in gone and r.getent("hosts", "backup").returncode == 2 \
                    and r.getent("hosts", "backup.mesh.internal").returncode == 2:
                gone[name] = time.monotonic() - removed_at
        if time.monotonic() - removed_at > PROPAGATION_S and len(gone) < len(resolvers):
            break
        time.sleep(0.05)
    print(f"backup stopped resolving after {gone} s")
    assert len(gone) == len(resolvers), f"backup still resolves after {PROPAGATION_S} s on " \
                                        f"{sorted(set(resolvers) - set(gone))} (others: {gone})"
    assert resolvers["client"].addresses("hosts", "nas"), "nas stopped resolving too"
    assert resolvers["nas"].addresses("ahosts", "client.mesh.internal"), "client stopped resolving too"
