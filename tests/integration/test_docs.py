# SPDX-License-Identifier: LGPL-2.1-or-later
"""docs/security.md names a test for every claim: each named test exists.

A claim whose test was renamed or deleted would otherwise stay on the page,
proven by nothing."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECURITY = REPO / "docs" / "security.md"
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
