# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 17, Done-when 3: `meshd-control migrate` moves a mesh from its
SQLite file to PostgreSQL and the nodes do not notice. A mesh on SQLite
(three nodes, an unused auth key, a certificate, a policy, an approved
route); serve stops, migrate copies, serve starts again on PostgreSQL with
the same state dir and address: every node keeps its meshd process and
node.json (no re-join), its token, its long-poll (a change made after
reaches it), and its certificate verifies against the CA it pinned; the
unused auth key still joins a new node. Bad input (a target holding a mesh,
a missing or damaged source, a wrong URL) is one line, non-zero, nothing
changed on either side."""

import hashlib
import json
import sqlite3
import threading
import time

import meshlab
from meshlab import wait_until
from test_hub import netmap
from test_routes import add_routes_section, routes

LAN = "198.51.100.0/24"
POLICY = '{"rules": ["allow * -> *"], "tests": ["alpha can reach bravo:22/tcp"]}\n'
PROPAGATION_S = 10

# every column of every table, in a form both engines print alike
TABLES = {
    "settings": ("key, value", "key, value", "key"),
    "authkeys": ("id, lower(hex(hash)), reusable, expires, used, created, tags",
                 "id, encode(hash,'hex'), reusable, expires, used, created, tags", "id"),
    "nodes": ("id, name, public_key, host, ipv4, ipv6, lower(hex(token_hash)), endpoints, authkey_id, created, "
              "removed, observed_endpoint, expired, cert_not_after, kind, expires, tags",
              "id, name, public_key, host, ipv4, ipv6, encode(token_hash,'hex'), endpoints, authkey_id, created, "
              "removed, observed_endpoint, expired, cert_not_after, kind, expires, tags", "id"),
    "path_reports": ("reporter_id, peer_id, direct, updated", "reporter_id, peer_id, direct, updated",
                     "reporter_id, peer_id"),
    "routes": ("node_id, prefix, state, advertised", "node_id, prefix, state, advertised", "node_id, prefix"),
}


def sqlite_rows(path, table) -> list[str]:
    cols, _, order = TABLES[table]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(f"SELECT {cols} FROM {table} ORDER BY {order}").fetchall()
    finally:
        db.close()
    return ["|".join("" if v is None else str(v) for v in row) for row in rows]


def pg_rows(pg, dbname, table) -> list[str]:
    """The same as sqlite_rows() (PEM values span lines: split by row, not line)."""
    _, cols, order = TABLES[table]
    # COLLATE "C" on both sides: SQLite's order is byte order
    row = " || '|' || ".join(f"COALESCE(({c})::text, '')" for c in cols.split(", "))
    text = pg.psql(f"SELECT {row} || chr(30) FROM {table} ORDER BY {order}", dbname=dbname)
    return [row.lstrip("\n") for row in text.split("\x1e")[:-1]]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def migrate(control, url, *extra):
    return control.command("--database", url, "migrate", *extra, check=False)


def one_line_error(cp, want: str, what: str):
    assert cp.returncode != 0, f"{what}: exit 0\n{cp.stdout}{cp.stderr}"
    lines = [line for line in cp.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"{what}: want one line, got {cp.stderr!r}"
    assert want in lines[0], f"{what}: {lines[0]!r}"


def start_mesh(lab, control, tmp_path):
    """alpha (advertising LAN, approved), bravo (with a certificate),
    charlie; a policy; an unused single-use key. Returns (nodes, key,
    bravo's certificate dir)."""
    key = control.authkey(reusable=True)
    # single-use and tagged: its tags must come along too
    lines = control.command("authkey", "create", "--tag=server").stdout.splitlines()
    left = meshlab.AuthKey(lines[0].strip(), lines[1].strip())
    alpha, bravo, charlie = (lab.add_node(n, authkey=key) for n in ("alpha", "bravo", "charlie"))
    add_routes_section(alpha, Advertise=LAN)
    nodes = [alpha, bravo, charlie]
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_ready(30)
    wait_until(lambda: routes(control) != [], 10, what="alpha's route at the server")
    control.command("routes", "approve", "alpha", LAN)
    (tmp_path / "policy.json").write_text(POLICY)
    control.command("policy", "set", tmp_path / "policy.json")
    out = lab.dir / "bravo-tls"
    cp = bravo.meshctl("cert", "--out", out)
    assert cp.returncode == 0, f"meshctl cert: {cp.stderr}"
    for n in nodes:
        wait_until(lambda n=n: n.peer_names() == {m.name for m in nodes} - {n.name}, PROPAGATION_S,
                   what=f"{n.name}'s peers")
    return nodes, left, out


def test_migrate_nodes_do_not_notice(lab, pg_server, tmp_path):
    start = time.monotonic()
    control = lab.add_control()
    nodes, left, tls = start_mesh(lab, control, tmp_path)
    alpha, bravo, charlie = nodes
    db_file = control.state_dir / "control.db"

    before = {
        "nodes": control.nodes(),
        "routes": routes(control),
        "policy": control.command("policy", "get").stdout,
        "node.json": {n.name: (n.state_dir / "node.json").read_bytes() for n in nodes},
        "pid": {n.name: n.proc.pid for n in nodes},
        "version": json.loads((alpha.state_dir / "netmap.json").read_text())["version"],
    }
    assert any(r["state"] == "approved" for r in before["routes"]), before["routes"]
    control.stop()
    rows = {t: sqlite_rows(db_file, t) for t in TABLES}
    files = sorted(p.name for p in control.state_dir.iterdir())
    source = digest(db_file)

    # the target: a fresh database, dropped with the lab
    lab.pg = pg_server
    lab.pg_database = f"ml{lab.rid}_migrate"
    url = pg_server.create_database(lab.pg_database)

    took = time.monotonic()
    cp = migrate(control, url)
    took = time.monotonic() - took
    assert cp.returncode == 0, f"migrate: {cp.stdout}{cp.stderr}"
    print(f"migrate: {took:.2f} s\n{cp.stdout}")
    assert f"{len(rows['nodes'])} nodes and devices" in cp.stdout, cp.stdout
    assert f"{len(rows['settings'])} settings" in cp.stdout, cp.stdout
    version = int(next(r for r in rows["settings"] if r.startswith("version|")).split("|")[1])
    assert version >= before["version"]
    assert f"netmap version {version}" in cp.stdout, cp.stdout
    # the source is never written, not even a -wal beside it
    assert digest(db_file) == source
    assert sorted(p.name for p in control.state_dir.iterdir()) == files
    # every row, every column, the secrets (settings) included
    for t in TABLES:
        assert pg_rows(pg_server, lab.pg_database, t) == rows[t], t
    assert "tls_pem" in "".join(rows["settings"]) and "ca_pem" in "".join(rows["settings"])
    # bravo's certificate holds its name back (cert_not_after), the key its tags
    assert next(r for r in rows["nodes"] if r.split("|")[1] == "bravo").split("|")[13] != ""
    assert rows["authkeys"][-1].endswith("|server"), rows["authkeys"]

    # a second migrate into the same database: refused, naming it, nothing changed
    cp = migrate(control, url)
    one_line_error(cp, "holds a mesh already", "migrate again")
    assert f"host={pg_server.dir}" in cp.stderr, cp.stderr
    assert pg_rows(pg_server, lab.pg_database, "nodes") == rows["nodes"]

    # serve on PostgreSQL: same state dir, same address
    control.database_args = ["--database", url]
    control.start()
    control.wait_ready(20)
    assert control.nodes() == before["nodes"]
    assert routes(control) == before["routes"]
    assert control.command("policy", "get").stdout == before["policy"]

    # the tokens are accepted, the version is the one copied, and a
    # long-poll from it waits for the next change and gets it
    token = json.loads(before["node.json"]["alpha"])["token"]
    status, data = netmap(control, token, since=0, timeout=0)
    assert status == 200 and data["version"] == version, (status, data)
    polled = []
    poll = threading.Thread(target=lambda: polled.append(netmap(control, token, since=version, timeout=20)))
    poll.start()
    time.sleep(0.5)     # the poll waits (no sleep hides a race: a wrong answer fails below)
    assert not polled, polled

    # a change made after reaches every node over its resumed long-poll
    control.remove_node("charlie")
    poll.join(25)
    status, data = polled[0]
    assert status == 200 and data["version"] > version, (status, data)
    assert "charlie" not in {p["name"] for p in data["peers"]}, data["peers"]
    for n in (alpha, bravo):
        wait_until(lambda n=n: n.peer_names() == {"alpha", "bravo"} - {n.name}, PROPAGATION_S,
                   what=f"{n.name} sees charlie gone")
    # the unused single-use key joins a new node, with a new id and address
    delta = lab.add_node("delta", authkey=left)
    delta.start()
    delta.wait_ready(30)
    for n in (alpha, bravo):
        wait_until(lambda n=n: "delta" in n.peer_names(), PROPAGATION_S, what=f"{n.name} sees delta")
    new = next(n for n in control.nodes() if n["name"] == "delta")
    assert new.get("tags") == ["server"], new
    assert new["ipv4"] not in {n["ipv4"] for n in before["nodes"]}, new
    ids = [int(line.split("|")[0]) for line in pg_rows(pg_server, lab.pg_database, "nodes")]
    assert ids[-1] > max(int(line.split("|")[0]) for line in rows["nodes"]), ids

    # no node noticed: same process, same identity on disk
    for n in (alpha, bravo):
        assert n.proc.pid == before["pid"][n.name] and n.running, n.name
        assert (n.state_dir / "node.json").read_bytes() == before["node.json"][n.name], n.name
    # bravo's certificate verifies against the CA it pinned, and a renewal
    # (signed by the CA now in PostgreSQL) does too
    ca, crt = tls / "mesh-ca.crt", next(tls.glob("bravo.*.crt"))
    assert meshlab.run(["openssl", "verify", "-CAfile", ca, crt], check=False).returncode == 0
    cp = bravo.meshctl("cert", "--renew")
    assert cp.returncode == 0, f"meshctl cert --renew on PostgreSQL: {cp.stderr}"
    cp = meshlab.run(["openssl", "verify", "-CAfile", ca, bravo.state_dir / "certs" / "cert.pem"], check=False)
    assert cp.returncode == 0, f"renewed certificate: {cp.stdout}{cp.stderr}"
    print(f"test_migrate_nodes_do_not_notice: {time.monotonic() - start:.1f} s")


def test_migrate_bad_input(lab, pg_server, tmp_path):
    """Each refusal is one line naming the thing at fault, non-zero, and
    leaves both sides as they were."""
    control = lab.add_control(start=False, hub=False)
    db_file = control.state_dir / "control.db"
    source = digest(db_file)
    lab.pg = pg_server
    lab.pg_database = f"ml{lab.rid}_bad"
    url = pg_server.create_database(lab.pg_database)

    def target_empty():
        return pg_server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                              dbname=lab.pg_database).strip() == "0"

    # no --database, or a file for it
    one_line_error(control.command("migrate", check=False), "--database=postgresql://", "no --database")
    # source missing
    missing = tmp_path / "missing.db"
    one_line_error(migrate(control, url, f"--from={missing}"), str(missing), "missing source")
    # source damaged: a page of the file overwritten, or not a database at all
    damaged = tmp_path / "damaged.db"
    data = bytearray(db_file.read_bytes())
    data[4096:8192] = b"\xa5" * 4096
    damaged.write_bytes(data)
    one_line_error(migrate(control, url, f"--from={damaged}"), str(damaged), "damaged source")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database\n" * 500)
    one_line_error(migrate(control, url, f"--from={garbage}"), str(garbage), "not a database")
    # a database of another program (no schema)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.commit()
    one_line_error(migrate(control, url, f"--from={empty}"), "holds no meshd-control mesh", "no schema")
    # a schema from the future
    future = tmp_path / "future.db"
    future.write_bytes(db_file.read_bytes())
    db = sqlite3.connect(future)
    db.execute("PRAGMA user_version = 99")
    db.close()
    one_line_error(migrate(control, url, f"--from={future}"), "schema 99", "unknown schema")
    # a wrong URL: no server there; the password never shown
    bad = "postgresql://meshd:s3cret@/mesh?host=/nonexistent-meshd"
    cp = migrate(control, bad)
    one_line_error(cp, "postgresql://meshd:***@/mesh", "wrong URL")
    assert "s3cret" not in cp.stdout + cp.stderr
    assert target_empty()

    # a target with a mesh (init'ed there): refused, naming it, unchanged
    other = f"ml{lab.rid}_full"
    full = pg_server.create_database(other)
    try:
        control.command("--database", full, "init", "--url", control.url)
        before = pg_rows(pg_server, other, "settings")
        cp = migrate(control, full)
        one_line_error(cp, "holds a mesh already (table 'schema_version')", "target not empty")
        assert f"host={pg_server.dir}" in cp.stderr
        assert pg_rows(pg_server, other, "settings") == before
        # one table of a mesh is enough to refuse
        pg_server.psql("CREATE TABLE nodes (x int)", dbname=lab.pg_database)
        one_line_error(migrate(control, url), "table 'nodes'", "a stray table")
        pg_server.psql("DROP TABLE nodes", dbname=lab.pg_database)
    finally:
        pg_server.drop_database(other)

    assert target_empty()
    assert digest(db_file) == source
    # and then it works
    cp = migrate(control, url)
    assert cp.returncode == 0, cp.stderr
    assert digest(db_file) == source
