"""The docs stay true: every relative link resolves, and every terminal session on a page is replayed.

Sessions (```console blocks, see docsessions.py) run in new PID and network
namespaces, so they need root (unshare); elsewhere they are skipped with the
reason. Links are checked everywhere.
"""
import os
import pathlib
import re
import shutil

import pytest

import docsessions

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(path):
    """The page's text outside fenced code blocks, line by line (number, text)."""
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, re.sub(r"`[^`]*`", "", line)  # inline code is not a link


def anchors(path):
    """GitHub's anchors for the headings of a page: lower case, punctuation dropped, spaces to hyphens."""
    out, seen = set(), {}
    for _, line in prose(path):
        m = re.match(r"#+\s+(.*)", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_every_relative_link_and_image_resolves():
    broken = []
    for page in PAGES:
        for number, line in prose(page):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue  # http:, https:, mailto:
                file, _, anchor = target.partition("#")
                where = (page.parent / file).resolve() if file else page
                if not where.exists():
                    broken.append(f"{page.relative_to(ROOT)}:{number}: {target} (no such file)")
                elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                    broken.append(f"{page.relative_to(ROOT)}:{number}: {target} (no heading #{anchor})")
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


PAGES_WITH_SESSIONS = [page for page in PAGES if docsessions.sessions(page)]


@pytest.mark.parametrize("page", PAGES_WITH_SESSIONS, ids=[str(p.relative_to(ROOT)) for p in PAGES_WITH_SESSIONS])
def test_terminal_sessions_on_the_page_are_what_the_programs_print(page, bin_dir):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("sessions run in their own PID and network namespaces: needs root and unshare")
    if not (ROOT / "build" / "bin").samefile(bin_dir):
        pytest.skip("sessions run the release build the pages name (build/bin)")
    shell = docsessions.Shell(ROOT)
    try:
        for block in docsessions.sessions(page):
            if block.skip:
                continue  # shown to the reader, not replayed (it says why)
            for command, expected in block.commands:
                actual = shell.run(command, expected)
                assert docsessions.matches(expected, actual), (
                    f"{page.relative_to(ROOT)}, the session at line {block.line}: `$ {command}` printed\n" +
                    "\n".join(actual) + "\n\nwhere the page shows\n" + "\n".join(expected))
    finally:
        shell.close()
