#!/usr/bin/env python3
"""Mark Chinese pages as translating the current version of their English page.

    tools/docs/zh_source.py docs/zh/03-prefork.md [more pages...]
    tools/docs/zh_source.py --stale        # list the pages whose English page changed

Writes (or replaces) the page's first line, <!-- source: docs/X.md sha256:... -->,
which tests/blackbox/test_translations.py checks. Run it only after the
translation carries the English page's change: it records a promise.
"""
import hashlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS, ZH = ROOT / "docs", ROOT / "docs" / "zh"
SOURCE = re.compile(r"<!-- source: (\S+) sha256:([0-9a-f]{16}) -->")


def english_of(zh):
    return DOCS / zh.resolve().relative_to(ZH)


def line_for(english):
    digest = hashlib.sha256(english.read_bytes()).hexdigest()[:16]
    return f"<!-- source: {english.relative_to(ROOT)} sha256:{digest} -->"


def main(args):
    if args == ["--stale"]:
        for zh in sorted(ZH.rglob("*.md")):
            english = english_of(zh)
            if english.exists() and zh.read_text(encoding="utf-8").split("\n", 1)[0] != line_for(english):
                print(zh.relative_to(ROOT))
        return 0
    if not args or any(a.startswith("-") for a in args):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for name in args:
        zh = pathlib.Path(name)
        english = english_of(zh)
        if not english.exists():
            print(f"zh_source: {name}: no English page {english.relative_to(ROOT)}", file=sys.stderr)
            return 1
        lines = zh.read_text(encoding="utf-8").split("\n")
        if SOURCE.fullmatch(lines[0]):
            lines[0] = line_for(english)
        else:
            lines.insert(0, line_for(english))
        zh.write_text("\n".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
