"""The docs stay true: every relative link resolves, and every terminal session on a page is replayed.

Sessions (```console blocks, see docsessions.py) run in new PID and network
namespaces, so they need root (unshare); elsewhere they are skipped with the
reason. Links are checked everywhere.
"""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

import docsessions
import markdown

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(path):
    """The page's text outside fenced code blocks, line by line (number, text), inline code removed."""
    return [(number, markdown.without_inline_code(line)) for number, line in markdown.prose(path)]


def headings(path):
    """The page's headings outside fenced code blocks, inline code kept as text (GitHub slugs it too)."""
    return [line.replace("`", "") for _, line in markdown.prose(path)]


def anchors(path):
    """GitHub's anchors for the headings of a page: lower case, punctuation dropped, spaces to hyphens."""
    out, seen = set(), {}
    for line in headings(path):
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


# docs/zh/ pages hold the same blocks as their English pages (test_translations.py): replayed once.
PAGES_WITH_SESSIONS = [page for page in PAGES
                       if docsessions.sessions(page) and ROOT / "docs" / "zh" not in page.parents]


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


DIAGRAMS = ROOT / "docs" / "diagrams"


def test_every_diagram_is_well_formed_svg_and_drawn_from_a_committed_source():
    import xml.etree.ElementTree as ET
    problems = []
    for svg in sorted(DIAGRAMS.glob("*.svg")):
        try:
            root = ET.parse(svg).getroot()
        except ET.ParseError as e:
            problems.append(f"{svg.name}: not well-formed XML ({e}): browsers and GitHub will not draw it")
            continue
        if not root.tag.endswith("svg"):
            problems.append(f"{svg.name}: its root element is {root.tag}, not svg")
        if "<script" in svg.read_text(encoding="utf-8") or "xlink:href=\"http" in svg.read_text(encoding="utf-8"):
            problems.append(f"{svg.name}: fetches or runs something (the conventions: nothing external)")
    for dot in sorted(DIAGRAMS.glob("*.dot")):
        if not dot.with_suffix(".svg").exists():
            problems.append(f"{dot.name}: no {dot.stem}.svg drawn from it (docs/diagrams/render.sh)")
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_each_dot_diagram_is_what_its_source_renders_to():
    r = subprocess.run([DIAGRAMS / "render.sh", "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"an SVG is out of date with its .dot source:\n{r.stdout}{r.stderr}"
