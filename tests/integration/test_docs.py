# SPDX-License-Identifier: LGPL-2.1-or-later
"""docs/security.md names a test for every claim: each named test exists.
docs/architecture.md names every source file: its file map lists them all.

A claim whose test was renamed or deleted would otherwise stay on the page,
proven by nothing; a file added or split without a line in the file map
would leave the map a newcomer reads wrong."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECURITY = REPO / "docs" / "security.md"
ARCHITECTURE = REPO / "docs" / "architecture.md"
REFERENCE = re.compile(r"`((?:integration|unit|vm)/[\w./-]+?)(?:::(\w+))?`")


def references():
    return REFERENCE.findall(SECURITY.read_text())


def test_security_md_names_tests():
    assert len(references()) >= 30, "docs/security.md should cite its tests as `integration/FILE::TEST`"


def test_every_test_named_in_security_md_exists():
    missing = []
    for path, name in references():
        source = REPO / "tests" / path
        if not source.is_file():
            missing.append(f"{path}: no such file")
        elif name and not re.search(rf"^((async )?def|static void) {name}\(", source.read_text(), re.M):
            missing.append(f"{path}::{name}: no such test")
    assert not missing, "docs/security.md names tests that do not exist:\n" + "\n".join(missing)


def test_architecture_md_names_every_source_file():
    """Each .c and .h under src/ appears backticked, as `src/daemon/peer.c`."""
    named = set(re.findall(r"`(src/[\w./-]+\.[ch])`", ARCHITECTURE.read_text()))
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "src").rglob("*.[ch]"))
    assert files, "no source files under src/"
    missing = [f for f in files if f not in named]
    assert not missing, (
        f"docs/architecture.md's file map lacks {len(missing)} of {len(files)} source files "
        "(one line each, as `src/dir/file.c`: what it owns):\n" + "\n".join(missing))
    gone = sorted(n for n in named if not (REPO / n).is_file())
    assert not gone, "docs/architecture.md names source files that do not exist:\n" + "\n".join(gone)
