"""The Chinese course (docs/zh/) stays the translation of the English one.

Every English page under docs/ has a page of the same name under docs/zh/.
The Chinese page's first line says which version of the English page it
translates:

    <!-- source: docs/03-prefork.md sha256:0123456789abcdef -->

(the first 16 hex digits of the English file's SHA-256). When the English
page changes, the test names the Chinese pages to bring up to date and the
command that shows what changed; once the translation carries the change,
`tools/docs/zh_source.py PAGE` writes the new line. The fenced code blocks
(commands, program output, code) are the same on both pages, in the same
order: the programs speak English, and a reader copies commands from either.
Each page links the other.

Not mirrored: docs/results/*/results.md, which compare wrote (program
output, like the tables it holds), and the glossary, which only the Chinese
course has.

The Chinese course says each thing one way: the glossary gives the words,
and REJECTED below the variants that must not come back, on any Chinese
page (labs included).
"""
import hashlib
import pathlib
import re

import markdown
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ZH = DOCS / "zh"
SOURCE = re.compile(r"<!-- source: (\S+) sha256:([0-9a-f]{16}) -->")
ZH_ONLY = {ZH / "glossary.md"}


def english_pages():
    return sorted(p for p in DOCS.rglob("*.md")
                  if ZH not in p.parents and DOCS / "results" not in p.parents)


def chinese_page(english):
    return ZH / english.relative_to(DOCS)


def translated_pages():
    """(English page, its Chinese page) for every English page that has one
    (a missing one is test_every_english_page_has_its_chinese_page's to report)."""
    return [(english, chinese_page(english)) for english in english_pages() if chinese_page(english).exists()]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def fenced_blocks(path):
    """The page's fenced code blocks, each as its lines, the opening fence first."""
    return [[block.fence, *block.lines] for block in markdown.blocks(path)]


def rel(path):
    return str(path.relative_to(ROOT))


def test_every_english_page_has_its_chinese_page():
    missing = [rel(chinese_page(p)) for p in english_pages() if not chinese_page(p).exists()]
    assert not missing, "English pages without their Chinese page:\n" + "\n".join(missing)


def test_no_chinese_page_without_an_english_one():
    strays = [rel(p) for p in ZH.rglob("*.md")
              if p not in ZH_ONLY and not (DOCS / p.relative_to(ZH)).exists()]
    assert not strays, "Chinese pages whose English page is gone (rename or delete them too):\n" + "\n".join(strays)


def test_each_chinese_page_translates_the_current_english_page():
    stale = []
    for english, zh in translated_pages():
        first = (zh.read_text(encoding="utf-8").splitlines() or [""])[0]
        m = SOURCE.fullmatch(first)
        if not m or m.group(1) != rel(english):
            stale.append(f"{rel(zh)}: its first line must be <!-- source: {rel(english)} sha256:... -->")
        elif m.group(2) != digest(english):
            stale.append(f"{rel(zh)}: translates {rel(english)} as it was at sha256:{m.group(2)}, "
                         f"which has changed since (now {digest(english)}); to see how: "
                         f"git log -p -- {rel(english)}")
    assert not stale, ("Chinese pages behind their English page (carry the change over, then run "
                       "tools/docs/zh_source.py on them):\n" + "\n".join(stale))


def test_code_blocks_are_the_same_on_both_pages():
    differ = []
    for english, zh in translated_pages():
        en_blocks, zh_blocks = fenced_blocks(english), fenced_blocks(zh)
        if len(en_blocks) != len(zh_blocks):
            differ.append(f"{rel(zh)}: {len(zh_blocks)} code blocks, {rel(english)} has {len(en_blocks)}")
            continue
        for n, (a, b) in enumerate(zip(en_blocks, zh_blocks), 1):
            if a != b:
                first = next(i for i, (x, y) in enumerate(zip(a + [""], b + [""])) if x != y)
                differ.append(f"{rel(zh)}: code block {n} differs from {rel(english)}'s at its line {first + 1}: "
                              f"{(b + [''])[first]!r} where English has {(a + [''])[first]!r}")
    assert not differ, "code blocks must be identical (commands and output stay English):\n" + "\n".join(differ)


def links(path):
    return re.findall(r"\]\(([^)\s#]+)", path.read_text(encoding="utf-8"))


def test_each_page_links_its_translation():
    one_way = []
    for english, zh in translated_pages():
        if not any((english.parent / t).resolve() == zh for t in links(english)):
            one_way.append(f"{rel(english)} does not link {rel(zh)}")
        if not any((zh.parent / t).resolve() == english for t in links(zh)):
            one_way.append(f"{rel(zh)} does not link {rel(english)}")
    readme = ROOT / "README.md"
    if not any((ROOT / t).resolve() == ZH / "README.md" for t in links(readme)):
        one_way.append("README.md does not link docs/zh/README.md")
    assert not one_way, "pages that do not link their other-language page:\n" + "\n".join(one_way)


def test_the_glossary_explains_the_terms_and_says_where():
    text = (ZH / "glossary.md").read_text(encoding="utf-8")
    for term in ["惊群", "预派生", "描述符传递", "句柄传递", "全连接队列", "半连接队列", "水平触发", "边缘触发",
                 "记分板", "滚动重启", "监听套接字", "退役", "重新拉起", "平滑重启", "接班者", "顺序锁"]:
        assert term in text, f"the glossary lacks {term}"
    rows = [line for line in text.splitlines() if line.startswith("| ") and "](" in line]
    assert len(rows) >= 20, f"the glossary has {len(rows)} terms with a link to where they are explained; expected 20 or more"


# Variants the Chinese course no longer uses (docs/zh/glossary.md, "不再使用的译法").
# Each: the variant (a regex, matched in prose: fenced blocks and inline code are
# not read), the word to use, and a regex that makes the variant legitimate when
# it matches within NEAR characters of it (None: nowhere). On the glossary's own
# definition lines a variant that stands beside the word to use is an
# explanation, not a use; its table of rejected variants is not read at all.
REJECTED = [
    (r"回答", "应答（HTTP 的叫响应）", r"思考题|问题|报告|答案"),  # answering a question stays 回答
    (r"后继者|接替者", "接班者", None),
    (r"优雅退出", "优雅停止", None),
    (r"重新派生", "重新拉起", None),
    (r"序列计数", "顺序锁（seqlock）", None),
    (r"accept 锁", "accept 互斥锁", None),
    (r"(listen|监听) backlog|backlog ?[里中]|（backlog）|backlog（全连接", "全连接队列（backlog 只指 listen() 的长度参数）", None),
    (r"句柄传递", "描述符传递（SCM_RIGHTS）", r"handle passing"),  # Node's handle passing keeps its name, glossed
    (r"文件描述符传递", "描述符传递", None),
    (r"套接字", "socket", None),
    (r"端口复用（SO_REUSEADDR|SO_REUSEADDR（端口复用", "端口复用（SO_REUSEPORT）；SO_REUSEADDR 是地址重用", None),
    (r"种子文章", "文章的标题（《……》）", None),
    (r"大声", "报错并退出（不直译 loudly）", None),
    (r"烧掉", "占满、耗掉（不直译 burn）", None),
    (r"原地狂转", "空转", None),
    (r"round.robin[^。]{0,30}轮询|轮询[^。]{0,30}round.robin|默认轮询", "轮转（轮询是 poll）", None),
]

NEAR = 30

# Chinese pages that translate an English page being rewritten elsewhere: each
# waived occurrence is (page, the exact text); the new translation drops it, and
# then its line here must go too (the test says so).
WAIVED = set()  # none now: docs/zh/course.md's last one went with its rewrite


def prose_lines(path):
    """(line number, the line, the line without inline code) outside fenced blocks."""
    return [(number, line, markdown.without_inline_code(line)) for number, line in markdown.prose(path)]


def rejected_variants(path):
    """(line number, variant found, word to use) for each rejected variant on a Chinese page."""
    glossary = path == ZH / "glossary.md"
    section = None
    for number, line, text in prose_lines(path):
        if line.startswith("## "):
            section = line
        if glossary and section == "## 不再使用的译法":
            continue
        for page, phrase in WAIVED:
            if page == rel(path):
                text = text.replace(phrase, "")
        for pattern, use, legitimate in REJECTED:
            if glossary and use.split("（")[0] in text:
                continue
            for m in re.finditer(pattern, text):
                near = text[max(0, m.start() - NEAR):m.end() + NEAR]
                if not (legitimate and re.search(legitimate, near)):
                    yield number, m.group(0), use


@pytest.mark.parametrize("sentence,use", [
    ("主进程把连接依次交给下一个工作进程（round-robin，轮询）。", "轮转"),
    ("Node 把它叫作句柄传递。", "描述符传递"),
    ("每个套接字都有一个接收缓冲区。", "socket"),
])
def test_the_checker_flags_a_rejected_variant_put_into_a_page(tmp_path, sentence, use):
    page = tmp_path / "03-prefork.md"
    page.write_text((ZH / "03-prefork.md").read_text(encoding="utf-8") + "\n" + sentence + "\n", encoding="utf-8")
    assert not list(rejected_variants(ZH / "03-prefork.md")), "the page as it is uses no rejected variant"
    assert any(u.startswith(use) for _, _, u in rejected_variants(page)), (
        f"a page saying {sentence!r} must be told to use {use}: the checker missed it")


def test_no_chinese_page_uses_a_rejected_variant():
    found = []
    for page in sorted(ZH.rglob("*.md")):
        for number, variant, use in rejected_variants(page):
            found.append(f"{rel(page)}:{number}: {variant!r}: use {use}")
    stale = [f"{page}: {phrase!r} is gone; remove it from WAIVED" for page, phrase in sorted(WAIVED)
             if phrase not in (ROOT / page).read_text(encoding="utf-8")]
    assert not found and not stale, ("the Chinese course uses one word per concept (docs/zh/glossary.md):\n"
                                     + "\n".join(found + stale))


def test_each_picture_on_a_chinese_page_has_a_chinese_caption():
    """The pictures keep their English labels; a caption in Chinese (a line *图：...*) follows each."""
    bare = []
    for page in sorted(ZH.rglob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if not line.startswith("!["):
                continue
            after = next((l for l in lines[n + 1:] if l.strip() and not l.startswith("![")), "")
            if not after.startswith("*图"):
                bare.append(f"{rel(page)}:{n + 1}: {line}")
    assert not bare, "pictures without a Chinese caption (*图：...* on the next line):\n" + "\n".join(bare)
