# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bash completion of meshctl and meshd-control (issue 18).

Each test runs a real bash: it loads bash-completion, lets its loader find
our file in completionsdir (as the first <TAB> does), sets COMP_WORDS and
COMP_CWORD like readline and calls the function that `complete -p` names,
then prints COMPREPLY. The word lists in the completion files are checked
against the programs' --help: a command or option that one side has and
the other lacks fails here, so the two cannot drift apart.

What is tested: with MESHD_PACKAGE_ROOT (the .debs unpacked there, as
tools/test's package suite does), the packaged files; otherwise the
completion files of this tree with the programs of $MESHLAB_BUILD_DIR
(default build/).
"""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
PROGRAMS = ("meshctl", "meshd-control")


def _locations():
    root = os.environ.get("MESHD_PACKAGE_ROOT")
    if root:
        root = Path(root)
        return (root / "usr/share/bash-completion/completions",
                {"meshctl": root / "usr/bin/meshctl", "meshd-control": root / "usr/bin/meshd-control"})
    build = Path(os.environ.get("MESHLAB_BUILD_DIR", REPO / "build"))
    return (REPO / "shell-completion/bash",
            {"meshctl": build / "src/ctl/meshctl", "meshd-control": build / "src/control/meshd-control"})


COMPLETIONS, BINARIES = _locations()


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    assert BASH_COMPLETION.exists(), "bash-completion is not installed"
    for p in BINARIES.values():
        assert p.exists(), f"{p} is missing (build first)"


def bash(script: str) -> str:
    """Runs script in a non-interactive bash with bash-completion loaded and
    our completions dir first in its search path (BASH_COMPLETION_USER_DIR
    is searched before the system's completionsdir)."""
    env = {"PATH": f"{BINARIES['meshctl'].parent}:{BINARIES['meshd-control'].parent}:/usr/bin:/bin",
           "HOME": "/nonexistent", "LC_ALL": "C",
           # meshctl peers must not find a running meshd of the host
           "MESHD_SOCKET": "/nonexistent/io.meshd.sock"}
    prelude = f"shopt -s extglob progcomp\nsource {BASH_COMPLETION}\n"
    if COMPLETIONS.name == "completions":
        # installed layout: bash-completion's loader finds NAME in
        # $BASH_COMPLETION_USER_DIR/completions, as in completionsdir
        env["BASH_COMPLETION_USER_DIR"] = str(COMPLETIONS.parent)
    else:
        # the tree's layout (shell-completion/bash/NAME): source the file
        # itself, as the loader would
        prelude += "".join(f"source {shlex.quote(str(COMPLETIONS / p))}\n" for p in PROGRAMS)
    cp = subprocess.run(["bash", "--norc", "--noprofile", "-c", prelude + script],
                        env=env, capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return cp.stdout


def complete(line: str) -> list[str]:
    """The words bash offers for line (the cursor at its end)."""
    words = line.split(" ")
    prog = words[0]
    script = f"""
__load_completion {prog} || true
spec=$(complete -p {prog}) || exit 3
func=$(sed -E 's/.* -F ([^ ]+) .*/\\1/' <<<"$spec")
COMP_WORDS=({" ".join(shlex.quote(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE={shlex.quote(line)}
COMP_POINT=${{#COMP_LINE}}
"$func" {prog} {shlex.quote(words[-1])} {shlex.quote(words[-2])}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    return sorted(w for w in bash(script).splitlines() if w)


# ---------------------------------------------------------------- --help

def help_text(prog: str) -> str:
    cp = subprocess.run([str(BINARIES[prog]), "--help"], capture_output=True, text=True, timeout=10)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def help_sections(text: str) -> dict[str, list[str]]:
    sections, cur = {}, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][a-z]+:$", line):
            cur = sections.setdefault(line[:-1], [])
        elif cur is not None and line.strip():
            cur.append(line)
    return sections


def help_commands(prog: str) -> dict[str, set[str]]:
    """{command: {subcommands}} from the Commands: section."""
    out: dict[str, set[str]] = {}
    for line in help_sections(help_text(prog))["Commands"]:
        m = re.match(r"^  ([a-z][a-z-]*)(?: ([a-z|]+))?(?=\s|$)", line)
        if not m:
            continue
        subs = out.setdefault(m.group(1), set())
        if m.group(2) and m.group(2).upper() != m.group(2):
            subs.update(s for s in m.group(2).split("|") if s)
    return out


def help_options(prog: str) -> dict[str, str]:
    """{--option or -x: its description, continuation lines joined}."""
    opts: dict[str, str] = {}
    last: list[str] = []
    for line in help_sections(help_text(prog))["Options"]:
        tokens = line.split()
        if tokens[0].startswith("-"):
            # "-c --count=COUNT  Number…", "--acme-directory=URL, --acme-email=EMAIL, …"
            n = next((i for i, t in enumerate(tokens) if not t.startswith("-")), len(tokens))
            last = [re.match(r"--?[\w-]+", t).group(0) for t in tokens[:n]]
            for name in last:
                opts[name] = " ".join(tokens[n:])
        else:
            for name in last:
                opts[name] = (opts[name] + " " + line.strip()).strip()
    return opts


def takes_argument(prog: str, opt: str) -> bool:
    return bool(re.search(re.escape(opt) + r"=\S", help_text(prog)))


def commands_of_option(prog: str, opt: str, desc: str, commands) -> set[str]:
    """The commands an option belongs to, as --help says: meshctl in
    parentheses, "(ping, default 3)"; meshd-control as a prefix, "init,
    serve:" or "authkey create, devices add:". Empty: a global option."""
    found = set()
    if prog == "meshctl":
        for group in re.findall(r"\(([^)]*)\)", desc):
            found |= {w.strip() for w in group.split(",") if w.strip() in commands}
        for line in help_sections(help_text(prog))["Commands"]:
            m = re.match(r"^  ([a-z][a-z-]*)", line)
            if m and re.search(re.escape(opt) + r"(?![\w-])", line):
                found.add(m.group(1))
    else:
        m = re.match(r"^([a-z ,-]+):", desc)
        if m:
            found = {c.strip() for c in m.group(1).split(",")}
    return found


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("prog", PROGRAMS)
def test_complete_p_names_our_function(prog):
    out = bash(f"__load_completion {prog} || true\ncomplete -p {prog}")
    func = "_meshctl" if prog == "meshctl" else "_meshd_control"
    assert out.strip() == f"complete -F {func} {prog}", out


def test_meshctl_tab_offers_every_command():
    assert complete("meshctl ") == sorted(help_commands("meshctl"))


def test_meshctl_peers_dashdash_tab_offers_the_global_options():
    got = complete("meshctl peers --")
    assert "--json" in got and "--socket=" in got and "--help" in got, got
    # nothing of other commands (e.g. up's --server=)
    assert "--server=" not in got, got


def test_meshctl_prefix_and_subcommands():
    assert complete("meshctl pe") == ["peers"]
    assert complete("meshctl nss ") == ["disable", "enable"]
    assert complete("meshctl --json trust ") == ["install", "remove"]
    assert complete("meshctl up --accept-routes=") == ["all", "none"]


def test_meshd_control_commands_and_subcommands():
    cmds = help_commands("meshd-control")
    assert complete("meshd-control ") == sorted(cmds)
    for cmd, subs in cmds.items():
        if subs:
            assert complete(f"meshd-control {cmd} ") == sorted(subs), cmd


@pytest.mark.parametrize("prog", PROGRAMS)
def test_every_option_of_help_is_completed_where_help_says(prog):
    cmds = help_commands(prog)
    opts = help_options(prog)
    offered_anywhere: set[str] = set()
    for opt, desc in opts.items():
        want = opt + "=" if takes_argument(prog, opt) else opt
        where = commands_of_option(prog, opt, desc, cmds) or {""}
        for cmd in where:
            line = f"{prog} {cmd} {opt[:2]}" if cmd else f"{prog} {opt[:2]}"
            got = complete(line)
            offered_anywhere.update(got)
            assert want in got, f"{line!r}<TAB> lacks {want} (--help: {opt}  {desc})"


@pytest.mark.parametrize("prog", PROGRAMS)
def test_no_option_completed_that_help_lacks(prog):
    known = set(help_options(prog))
    cmds = help_commands(prog)
    lines = [f"{prog} --"] + [f"{prog} {c} --" for c in cmds]
    lines += [f"{prog} {c} {s} --" for c, subs in cmds.items() for s in subs]
    for line in lines:
        for w in complete(line):
            assert w.rstrip("=") in known, f"{line!r}<TAB> offers {w}, which --help does not list"
