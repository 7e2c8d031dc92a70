# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 11, identity on the control server: attacks that must fail.

Public keys are in every netmap, so a key proves nothing until its holder
answers a challenge with it (POST /v1/challenge, then the proof in POST
/v1/register; docs/protocol.md, "Joining"). Each test plays the attacker
over raw HTTPS and asserts what the attacker sees (status, error text) and
that the victim is unaffected."""

import base64
import json
import os
import time

import pytest

from meshlab import (CLIENT_ADDRESS, ControlApi, fake_public_key, keypair, private_key_of, register_proof,
                     wait_until)
from test_ca import ca_file, make_csr, openssl
from test_hub import api, register

DOMAIN = "mesh.internal"


@pytest.fixture
def attacker(lab, control):
    """(api, auth key): an HTTPS client on its own host with a reusable key,
    as a malicious member (or anyone who got a key) has."""
    client = lab.add_host("attacker", CLIENT_ADDRESS)
    return ControlApi(client, control), control.authkey(reusable=True)


def member(control, key, hostname):
    """A node registered over HTTP by its holder: (register reply, public key)."""
    reply = register(control, key, hostname)
    return reply, reply["netmap"]["self"]["public_key"]


def assert_victim_unaffected(api, reply, public_key):
    r = api.netmap(reply["token"])
    assert r.status == 200, f"the victim's token stopped working: {r.status} {r.body!r}"
    me = r.json()["self"]
    assert (me["name"], me["public_key"], me["ipv4"]) == (
        reply["name"], public_key, reply["netmap"]["self"]["ipv4"]), me


def test_attack_register_victim_key_without_proof(control, attacker):
    """With the victim's public key and a valid auth key, but not its
    private key: no challenge, no proof, a wrong proof, a proof by another
    key, a replayed challenge: 401, nothing stored, the victim unaffected.
    A key not yet registered cannot be claimed either."""
    api, key = attacker
    victim, victim_key = member(control, key, "victim")
    before = control.nodes()

    def attempt(body):
        r = api.request("POST", "/v1/register", {"authkey": str(key), "public_key": victim_key,
                                                 "hostname": "victim", "endpoints": [], **body})
        return r.status, r.json().get("error", "")

    assert attempt({}) == (401, "challenge: missing, get one with POST /v1/challenge")
    ch = api.challenge()
    assert attempt({"challenge": ch["challenge"]}) == (401, "proof: missing")
    status, error = attempt({"challenge": ch["challenge"], "proof": base64.b64encode(os.urandom(32)).decode()})
    assert (status, error.split(",")[0]) == (401, "proof: invalid")
    # a proof made with the attacker's own private key for the victim's public key
    mine, _ = keypair()
    forged = register_proof(mine, ch["server_key"], ch["challenge"], victim_key, "victim", key)
    assert attempt({"challenge": ch["challenge"], "proof": forged})[0] == 401
    # a challenge this server never issued
    tampered = ch["challenge"][:-2] + ("AA" if not ch["challenge"].endswith("AA") else "BB")
    assert attempt({"challenge": tampered, "proof": forged}) == (401, "challenge: not issued by this server")

    # a key nobody registered yet: claiming it needs its private key too
    _, unclaimed = keypair()
    r = api.register(key, unclaimed, "squatter", prove=False)
    assert r.status == 401, r

    # replay: a legitimate registration's challenge and proof, sent again
    own_public = fake_public_key()
    ch = api.challenge()
    body = {"authkey": str(key), "public_key": own_public, "hostname": "laptop", "endpoints": [],
            "challenge": ch["challenge"],
            "proof": register_proof(private_key_of(own_public), ch["server_key"], ch["challenge"],
                                    own_public, "laptop", key)}
    assert api.request("POST", "/v1/register", body).status == 200
    r = api.request("POST", "/v1/register", body)
    assert (r.status, r.json()["error"]) == (401, "challenge: already used")
    # the proof binds the request: the same challenge for another hostname fails
    ch = api.challenge()
    body.update(challenge=ch["challenge"], proof=register_proof(
        private_key_of(own_public), ch["server_key"], ch["challenge"], own_public, "laptop", key),
        hostname="evil")
    assert api.request("POST", "/v1/register", body).status == 401

    after = {n["name"] for n in control.nodes()}
    assert after == {n["name"] for n in before} | {"laptop"}, after
    assert_victim_unaffected(api, victim, victim_key)


def test_attack_stranger_renews_expired_node(lab, attacker, control):
    """An expired node's public key with a valid auth key: a stranger gets
    401 and the node stays expired; its holder renews it (same name and
    addresses, a new token) and re-joins the same way while active."""
    api, key = attacker
    victim, victim_key = member(control, key, "beta")
    control.command("nodes", "expire", "beta")

    r = api.register(key, victim_key, "beta", prove=False)
    assert r.status == 401, r
    mine, _ = keypair()
    r = api.register(key, victim_key, "beta", private_key=mine)     # a proof by the wrong key
    assert r.status == 401 and r.json()["error"].startswith("proof: invalid"), r
    assert next(n for n in control.nodes() if n["name"] == "beta")["expired"] is True
    # the certificate of beta's name is out of reach as well
    assert api.request("POST", "/v1/cert", {"csr": "x"}, token=victim["token"]).status == 403

    # the holder: renewed, same node
    r = api.register(key, victim_key, "other-hostname")
    assert r.status == 200, r
    renewed = r.json()
    assert renewed["name"] == "beta" and renewed["node_id"] == victim["node_id"]
    assert renewed["netmap"]["self"]["ipv4"] == victim["netmap"]["self"]["ipv4"]
    assert api.netmap(victim["token"]).status == 401        # the old token is gone

    # active and joining again (its node.json lost): the same node, a new token
    r = api.register(key, victim_key, "beta")
    assert r.status == 200, r
    again = r.json()
    assert (again["name"], again["node_id"]) == ("beta", victim["node_id"])
    assert api.netmap(renewed["token"]).status == 401
    assert api.netmap(again["token"]).status == 200


def test_attack_expired_node_needs_admin(lab):
    """--expired-nodes=admin: even the key holder stays expired (403 saying
    so) until `meshd-control nodes renew`; its token works again then."""
    control = lab.add_control(hub_args=["--expired-nodes=admin"])
    key = control.authkey(reusable=True)
    api = ControlApi(lab.add_host("client", CLIENT_ADDRESS), control)
    reply, public_key = member(control, key, "gamma")
    control.command("nodes", "expire", "gamma")

    r = api.register(key, public_key, "gamma")
    assert (r.status, r.json()["error"]) == (403, "node expired: an admin must renew it")
    assert api.netmap(reply["token"]).status == 403

    cp = control.command("nodes", "renew", "gamma")
    assert "Renewed node gamma" in cp.stderr + cp.stdout
    assert api.netmap(reply["token"]).status == 200
    cp = control.command("nodes", "renew", "gamma", check=False)
    assert cp.returncode != 0 and "Node 'gamma' has not expired." in cp.stderr


def test_attack_csr_for_another_node(control, attacker, tmp_path):
    """A valid token and a CSR for another member's name: 403 naming it."""
    api, key = attacker
    nas, _ = member(control, key, "nas")
    mallory, _ = member(control, key, "mallory")
    csr, _ = make_csr(tmp_path, f"nas.{DOMAIN}")
    status, data = api_cert(control, csr, mallory["token"])
    assert status == 403, data
    assert f"'nas.{DOMAIN}' is not a name of node mallory" in data["error"], data
    assert "certificate" not in data


def api_cert(control, csr, token):
    return api(control, "POST", "/v1/cert", {"csr": csr}, token=token)


def test_attack_removed_node_name_held_until_cert_expires(lab, tmp_path):
    """A removed node's name and addresses stay held while a certificate it
    was issued is valid: a new machine called svc gets svc-2. Once that
    certificate expired the name is reused, and a client trusting the mesh
    CA refuses the removed machine's certificate but accepts the new
    owner's."""
    control = lab.add_control(hub_args=["--cert-lifetime", "15s"])
    key = control.authkey(reusable=True)
    svc, _ = member(control, key, "svc")
    csr, _ = make_csr(tmp_path, f"svc.{DOMAIN}", tag="old")
    status, old = api_cert(control, csr, svc["token"])
    assert status == 200, old
    (tmp_path / "old.pem").write_text(old["certificate"])
    control.remove_node("svc")

    twin = register(control, key, "svc")
    assert twin["name"] == "svc-2", twin["name"]
    assert twin["netmap"]["self"]["ipv4"] != svc["netmap"]["self"]["ipv4"]
    assert twin["netmap"]["self"]["ipv6"] != svc["netmap"]["self"]["ipv6"]
    held = control.command("nodes", "list").stdout
    assert "svc" in held and "held until" in held, held

    # the old certificate's not_after is the contract: poll the clock, not a guess
    wait_until(lambda: time.time() > old["not_after"] + 1, timeout=30, interval=0.5)
    new = register(control, key, "svc")
    assert new["name"] == "svc", new["name"]
    csr, _ = make_csr(tmp_path, f"svc.{DOMAIN}", tag="new")
    status, cert = api_cert(control, csr, new["token"])
    assert status == 200, cert
    (tmp_path / "new.pem").write_text(cert["certificate"])

    cp = openssl("verify", "-CAfile", ca_file(control), "-verify_hostname", f"svc.{DOMAIN}",
                 tmp_path / "old.pem", check=False)
    assert cp.returncode != 0 and "expired" in cp.stdout + cp.stderr, cp.stdout + cp.stderr
    openssl("verify", "-CAfile", ca_file(control), "-verify_hostname", f"svc.{DOMAIN}", tmp_path / "new.pem")


@pytest.mark.parametrize("hostname", ["localhost", "wpad", "isatap", "hub"])
def test_attack_reserved_names(control, attacker, hostname):
    """Names resolvers and the mesh treat specially are never a node's."""
    api, key = attacker
    reply = register(control, key, hostname)
    assert reply["name"] == f"{hostname}-2", reply["name"]


JUNK = {
    "127.0.0.1:22": "loopback address",
    "0.0.0.0:41641": "unspecified address",
    "255.255.255.255:41641": "broadcast address",
    "224.0.0.1:41641": "multicast address",
    "169.254.1.1:41641": "link-local address",
    "[::1]:41641": "loopback address",
    "[::]:41641": "unspecified address",
    "[ff02::1]:41641": "multicast address",
    "[fe80::1]:41641": "link-local address",
    "[::ffff:127.0.0.1]:22": "loopback address",
    "100.64.0.7:41641": "inside the mesh's range",
}


def test_attack_junk_endpoints(control, attacker):
    """Endpoints that would aim every peer's handshakes at itself, at the
    mesh or at nobody: 400 naming the endpoint, nothing stored; port 0 is
    no endpoint at all."""
    api, key = attacker
    node, _ = member(control, key, "node")
    ipv6_range = node["netmap"]["ipv6_range"].split("/")[0]
    junk = {**JUNK, f"[{ipv6_range}7]:41641": "inside the mesh's range"}

    for endpoint, why in junk.items():
        r = api.set_endpoints(node["token"], {"endpoints": ["192.0.2.77:41641", endpoint]})
        assert r.status == 400, (endpoint, r)
        assert r.json()["error"] == f"endpoints[1]: {endpoint}: {why}", r.json()
        r = api.register(key, fake_public_key(), "junk", [endpoint])
        assert r.status == 400 and endpoint in r.json()["error"], (endpoint, r)
    r = api.set_endpoints(node["token"], {"endpoints": ["192.0.2.77:0"]})
    assert r.status == 400, r
    assert api.netmap(node["token"]).json()["self"]["endpoints"] == []
    assert "junk" not in {n["name"] for n in control.nodes()}

    r = api.set_endpoints(node["token"], {"endpoints": ["192.0.2.77:41641", "[2001:db8::7]:41641"]})
    assert r.status == 204, r


@pytest.mark.databases("sqlite")       # damages control.db
def test_attack_corrupt_control_db(lab):
    """A damaged control.db fails start-up with one line naming the file,
    exit status non-zero and no READY, instead of serving 500s."""
    control = lab.add_control()
    key = control.authkey(reusable=True)
    for i in range(40):
        register(control, key, f"n{i}")
    control.stop()
    db = control.state_dir / "control.db"
    assert db.stat().st_size > 4 * 4096
    with open(db, "r+b") as f:         # past page 1 (header and schema)
        f.seek(2 * 4096)
        f.write(b"\x5a" * 2 * 4096)

    control.start()
    assert control.proc.wait(20) != 0
    assert control.wait_ready(1, check=False) is None
    log = control.log.read_text()
    assert f"{db}: database is damaged" in log, control.log_tail()


def test_attack_node_never_announces_junk(lab, control):
    """meshd filters its own candidates with the server's predicate: with
    loopback, reserved and mesh-range addresses on an interface of its own,
    it announces only its underlay address (and the server took the list:
    one junk entry would have cost the whole list a 400)."""
    key = control.authkey()
    node = lab.add_node("nas", authkey=key)
    node.ns.ip("link", "add", "junk0", "type", "veth", "peer", "name", "junk1")
    node.ns.ip("link", "set", "junk1", "up")
    node.ns.ip("link", "set", "junk0", "up")
    for address in ("127.0.0.2/8", "240.0.0.1/24"):
        node.ns.ip("addr", "add", address, "dev", "junk0", "scope", "global")
    node.start()
    node.wait_ready(30)

    def announced():
        me = next((n for n in control.nodes() if n["name"] == "nas"), None)
        return me and me["endpoints"]

    endpoints = wait_until(announced, 20, what="nas's announced endpoints")
    assert endpoints == [f"{node.address}:41641"], endpoints

    # once joined: addresses inside the mesh's ranges (another tunnel, say;
    # before the join they would have made meshd refuse the mesh as
    # overlapping its underlay) are no endpoints, while a new underlay
    # address is announced
    mesh6 = node.status()["ipv6"].split("::")[0] + "::ffff"
    node.ns.ip("addr", "add", "100.64.200.1/24", "dev", "junk0", "scope", "global")
    node.ns.ip("addr", "add", f"{mesh6}/64", "dev", "junk0", "nodad")
    node.ns.ip("addr", "add", "198.18.0.1/24", "dev", "junk0")
    endpoints = wait_until(lambda: "198.18.0.1:41641" in (announced() or []) and announced(), 20,
                           what="the new underlay address announced")
    assert all(not e.startswith((f"[{mesh6}]", "100.64.200.1:")) for e in endpoints), endpoints
    assert sorted(endpoints) == sorted([f"{node.address}:41641", "198.18.0.1:41641"]), endpoints
    assert "refused endpoints" not in control.log.read_text()


def test_node_that_lost_node_json_rejoins_as_itself(lab, control):
    """A node whose node.json is gone but whose private key is kept joins
    again (AuthKeyFile=, a reusable key) as the same node: same name and
    addresses, a new token; the old token is refused from then on."""
    key = control.authkey(reusable=True)
    node = lab.add_node("nas", authkey=key)
    node.start()
    node.wait_ready(30)
    before = node.status()
    old_token = json.loads((node.state_dir / "node.json").read_text())["token"]
    node.stop()
    (node.state_dir / "node.json").unlink()

    node.start()
    node.wait_ready(30)
    after = node.status()
    assert (after["name"], after["ipv4"], after["ipv6"]) == (before["name"], before["ipv4"], before["ipv6"])
    new_token = json.loads((node.state_dir / "node.json").read_text())["token"]
    assert new_token != old_token
    api = ControlApi(lab.add_host("client", CLIENT_ADDRESS), control)
    assert api.netmap(old_token).status == 401
    assert api.netmap(new_token).status == 200
    assert [n["name"] for n in control.nodes()] == ["nas"]
