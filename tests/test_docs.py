"""The documents' links: every relative link in README.md, docs/*.md and examples/README.md
names a file that exists and, where it names a heading of a Markdown file (``#anchor``), a
heading that file has."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             ROOT / "examples" / "README.md"]
FENCED = re.compile(r"^```.*?^```", re.S | re.M)  # code blocks: no links, no headings
CODE = re.compile(r"`[^`]+`")
LINK = re.compile(r"\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = ("http://", "https://", "mailto:")


def links(path: Path):
    return LINK.findall(CODE.sub("", FENCED.sub("", path.read_text())))


def anchors(path: Path) -> set:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to '-', repeats numbered."""
    seen, ids = {}, set()
    for title in re.findall(r"^#{1,6}\s+(.*?)\s*$", FENCED.sub("", path.read_text()), re.M):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}-{count}")
    return ids


def test_the_documents_are_there():
    names = {p.name for p in DOCUMENTS}
    assert {"README.md", "cli.md", "bitstream.md", "results.md"} <= names, names


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(document):
    broken = []
    for target in links(document):
        if target.startswith(EXTERNAL):
            continue
        file, _, anchor = target.partition("#")
        path = (document.parent / file).resolve() if file else document
        if not path.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: {path.relative_to(ROOT)} has no heading #{anchor}")
    assert not broken, f"{document.relative_to(ROOT)}: broken links: " + "; ".join(broken)
