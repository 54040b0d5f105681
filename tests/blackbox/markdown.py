"""Markdown as the doc tests read it: the fenced code blocks of a page, and
the prose around them. One reader for test_docs.py (links, headings),
docsessions.py (the terminal sessions), test_translations.py (blocks alike on
both languages' pages, words of the glossary) and test_course.py.

A block opens at a line that starts, after blanks, with three backticks, and
closes at the next such line. Its info string is what follows the opening
backticks (`console`, `cpp`, or nothing).
"""
import dataclasses
import re


@dataclasses.dataclass
class Block:
    line: int     # the opening fence's line number, from 1
    fence: str    # the opening fence line as written (`console` sessions, indentation)
    info: str     # the info string: "console", "cpp", ""
    lines: list   # the lines between the fences


def read(text):
    """(blocks, prose): the fenced blocks in order, and [(line number, line)] outside them
    (fence lines in neither)."""
    blocks, prose, current = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            if current is None:
                current = Block(number, line, line.lstrip()[3:].strip(), [])
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.lines.append(line)
        else:
            prose.append((number, line))
    return blocks, prose


def blocks(path):
    return read(path.read_text(encoding="utf-8"))[0]


def prose(path):
    return read(path.read_text(encoding="utf-8"))[1]


def without_inline_code(line):
    """The line with its `inline code` removed (inline code is neither a link nor prose)."""
    return re.sub(r"`[^`]*`", "", line)
