# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 6, the control server's side: the mesh CA and POST /v1/cert.

The CA certificate must carry critical name constraints (checked with
openssl, not with our own parser); a CSR naming anything but the asking
node's own names is refused; a certificate the CA key signs for a name
outside the mesh fails verification; removed and expired nodes get none."""

import subprocess

import pytest

from test_hub import api, register, register_body

DOMAIN = "mesh.internal"


def openssl(*args, input=None, check=True):
    cp = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, input=input)
    if check:
        assert cp.returncode == 0, f"openssl {' '.join(map(str, args))}: {cp.stderr}"
    return cp


def make_csr(tmp_path, cn=None, sans=(), tag="req"):
    """A P-256 key and CSR made by openssl (not by meshd: the server must
    read what any client produces). Returns (csr PEM, key path)."""
    key = tmp_path / f"{tag}.key"
    csr = tmp_path / f"{tag}.csr"
    args = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={cn}" if cn else "/O=meshd test"]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(sans)]
    openssl(*args)
    return csr.read_text(), key


def cert_text(pem):
    return openssl("x509", "-noout", "-text", input=pem).stdout


@pytest.fixture
def two(control):
    """nas and backup registered over HTTP: {name: register reply}."""
    key = control.authkey(reusable=True)
    return {n: register(control, key.key, n) for n in ("nas", "backup")}, key


def ca_file(control):
    return control.secret_file("ca-cert.pem")


def test_ca_name_constraints_are_critical(control):
    text = openssl("x509", "-in", ca_file(control), "-noout", "-text").stdout
    print(text)
    assert "X509v3 Name Constraints: critical" in text
    permitted = text.split("X509v3 Name Constraints: critical", 1)[1]
    assert f"DNS:{DOMAIN}" in permitted
    assert "IP:100.64.0.0/255.192.0.0" in permitted
    assert "/FFFF:FFFF:FFFF:0:0:0:0:0" in permitted          # the mesh's IPv6 /48
    assert "CA:TRUE, pathlen:0" in text
    # the key is the server's secret: in the database, which is 0600
    assert oct((control.state_dir / "control.db").stat().st_mode & 0o777) == "0o600"


def test_get_ca(control):
    status, data = api(control, "GET", "/v1/ca")
    assert status == 200
    assert data["ca"] == ca_file(control).read_text()
    assert data["domain"] == DOMAIN


def test_cert_for_own_names(control, two, tmp_path):
    nodes, _ = two
    nas = nodes["nas"]
    me = nas["netmap"]["self"]
    csr, _ = make_csr(tmp_path, f"nas.{DOMAIN}", [f"IP:{me['ipv4']}"])
    status, data = api(control, "POST", "/v1/cert", {"csr": csr}, token=nas["token"])
    assert status == 200, data
    assert data["ca"] == ca_file(control).read_text()
    assert 0 < data["not_after"] - data["not_before"] <= 31 * 86400
    text = cert_text(data["certificate"])
    # every name of the node, although the CSR asked for two of three
    assert f"DNS:nas.{DOMAIN}" in text
    assert f"IP Address:{me['ipv4']}" in text
    assert "IP Address:" + me["ipv6"].split("::")[0].upper() in text
    assert "TLS Web Server Authentication" in text
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(data["certificate"])
    openssl("verify", "-CAfile", ca_file(control), leaf)
    openssl("verify", "-CAfile", ca_file(control), "-verify_hostname", f"nas.{DOMAIN}", leaf)
    cp = openssl("verify", "-CAfile", ca_file(control), "-verify_hostname", f"backup.{DOMAIN}", leaf,
                 check=False)
    assert cp.returncode != 0


@pytest.mark.parametrize("what", ["other-name", "other-address", "foreign-name", "bare-label"])
def test_csr_for_other_names_is_refused(control, two, tmp_path, what):
    nodes, _ = two
    backup = nodes["backup"]["netmap"]["self"]
    cn, sans = {
        "other-name": (f"backup.{DOMAIN}", []),
        "other-address": (f"nas.{DOMAIN}", [f"IP:{backup['ipv4']}"]),
        "foreign-name": (f"nas.{DOMAIN}", ["DNS:www.example.com"]),
        "bare-label": ("nas", []),
    }[what]
    csr, _ = make_csr(tmp_path, cn, sans)
    status, data = api(control, "POST", "/v1/cert", {"csr": csr}, token=nodes["nas"]["token"])
    print(status, data)
    assert status == 403, data
    assert "not a name of node nas" in data["error"]
    assert "certificate" not in data


@pytest.mark.parametrize("body,fragment", [
    ({}, "csr: missing"),
    ({"csr": 5}, "csr: missing"),
    ({"csr": "hello"}, "not a PEM certificate request"),
    ({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
     "not a PKCS#10 request"),
])
def test_malformed_csr(control, two, body, fragment):
    nodes, _ = two
    status, data = api(control, "POST", "/v1/cert", body, token=nodes["nas"]["token"])
    assert status == 400 and fragment in data["error"], (status, data)


def test_no_token_no_certificate(control, two, tmp_path):
    csr, _ = make_csr(tmp_path, f"nas.{DOMAIN}")
    assert api(control, "POST", "/v1/cert", {"csr": csr})[0] == 401
    assert api(control, "POST", "/v1/cert", {"csr": csr}, token="not-a-token")[0] == 401


@pytest.mark.parametrize("san", ["DNS:www.example.com", "IP:192.0.2.1", "DNS:mesh.internal.example.com"])
def test_outside_name_fails_verification(control, tmp_path, san):
    """Even the CA's own key cannot make a certificate for a name outside
    the mesh that verifies: the constraint binds every client."""
    csr, _ = make_csr(tmp_path, None, [san], tag="evil")
    (tmp_path / "evil.csr").write_text(csr)
    (tmp_path / "ext.cnf").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", tmp_path / "evil.csr", "-CA", ca_file(control),
            "-CAkey", control.secret_file("ca-key.pem"), "-CAcreateserial",
            "-CAserial", tmp_path / "serial", "-days", "1", "-extfile", tmp_path / "ext.cnf",
            "-out", tmp_path / "evil.pem")
    cp = openssl("verify", "-CAfile", ca_file(control), tmp_path / "evil.pem", check=False)
    print(cp.stdout, cp.stderr)
    assert cp.returncode != 0
    assert "permitted subtree violation" in cp.stdout + cp.stderr


def test_removed_and_expired_nodes_get_none(control, two, tmp_path):
    nodes, key = two
    csr, _ = make_csr(tmp_path, f"nas.{DOMAIN}")
    csr_b, _ = make_csr(tmp_path, f"backup.{DOMAIN}", tag="backup")

    control.remove_node("backup")
    status, data = api(control, "POST", "/v1/cert", {"csr": csr_b}, token=nodes["backup"]["token"])
    assert status == 403 and "removed" in data["error"], (status, data)

    control.command("nodes", "expire", "nas")
    status, data = api(control, "POST", "/v1/cert", {"csr": csr}, token=nodes["nas"]["token"])
    assert status == 403 and "expired" in data["error"], (status, data)
    listed = {n["name"]: n for n in control.nodes()}
    assert listed["nas"]["expired"] is True

    # the same key joining again renews the node: same name and address, a new token
    pub = nodes["nas"]["netmap"]["self"]["public_key"]
    status, again = api(control, "POST", "/v1/register",
                        register_body(control, key.key, "whatever", public_key=pub))
    assert status == 200, again
    assert again["name"] == "nas"
    assert again["netmap"]["self"]["ipv4"] == nodes["nas"]["netmap"]["self"]["ipv4"]
    assert api(control, "POST", "/v1/cert", {"csr": csr}, token=nodes["nas"]["token"])[0] == 401
    status, data = api(control, "POST", "/v1/cert", {"csr": csr}, token=again["token"])
    assert status == 200, data


def test_expired_node_leaves_netmaps(control, two):
    nodes, _ = two
    status, nm = api(control, "GET", "/v1/netmap?since=0", token=nodes["backup"]["token"])
    assert status == 200 and [p["name"] for p in nm["peers"]] == ["nas"]
    version = nm["version"]
    control.command("nodes", "expire", "nas")
    # the server notices another process's commit within its poll interval
    status, nm = api(control, "GET", f"/v1/netmap?since={version}&timeout=5",
                     token=nodes["backup"]["token"])
    assert status == 200 and nm["peers"] == [], nm
    status, data = api(control, "GET", "/v1/netmap?since=0", token=nodes["nas"]["token"])
    assert status == 403 and "expired" in data["error"]


@pytest.mark.parametrize("args,fragment", [
    (("nodes", "expire", "nosuch"), "No node named 'nosuch'"),
    (("--cert-lifetime", "5s", "serve"), "Invalid --cert-lifetime '5s'"),
    (("--cert-lifetime", "400d", "serve"), "Invalid --cert-lifetime '400d'"),
])
def test_cli_errors(control, args, fragment):
    cp = control.command(*args, check=False)
    lines = cp.stderr.strip().splitlines()
    assert cp.returncode != 0 and len(lines) == 1 and fragment in lines[0], cp.stderr


def test_cert_lifetime_option(lab, tmp_path):
    control = lab.add_control(hub_args=("--cert-lifetime", "1h"))
    key = control.authkey()
    nas = register(control, key.key, "nas")
    csr, _ = make_csr(tmp_path, f"nas.{DOMAIN}")
    status, data = api(control, "POST", "/v1/cert", {"csr": csr}, token=nas["token"])
    assert status == 200, data
    assert data["not_after"] - data["not_before"] == 3600 + 300

