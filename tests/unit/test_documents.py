"""Ingestion: every supported format becomes a verbatim Document with the right metadata."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest

from rag.documents import (
    Document,
    collect_paths,
    parse_date,
    parse_document,
    read_document,
    validate_source,
)
from rag.errors import InvalidDocument

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
SHARED_SEEDS = REPO.parent / "shared" / "seeds"
SEED_000 = "000_1ab512602a64e1c4.txt"
SEED_003 = "003_fcf2125f3a29daa1.txt"


# ----------------------------------------------------------------------------- seeds


def test_seeds_are_byte_for_byte_the_given_articles() -> None:
    if not SHARED_SEEDS.is_dir():
        pytest.skip(f"{SHARED_SEEDS} is not on this machine")
    ours = sorted(p.name for p in SEEDS.iterdir() if p.is_file())
    given = sorted(p.name for p in SHARED_SEEDS.iterdir() if p.is_file())
    assert ours == given
    for name in given:
        assert (SEEDS / name).read_bytes() == (SHARED_SEEDS / name).read_bytes(), name
    match, mismatch, errors = filecmp.cmpfiles(SEEDS, SHARED_SEEDS, given, shallow=False)
    assert (mismatch, errors) == ([], [])


def test_seed_000_header_date_line_gives_title_and_date() -> None:
    path = SEEDS / SEED_000
    doc = read_document(path)
    assert doc.source == SEED_000
    assert doc.title == "National facility aims to drive core breakthroughs in critical technology"
    assert doc.published == "2026-02-27"
    # Verbatim: exactly the file's bytes, decoded; offsets index into this very string.
    assert doc.text == path.read_bytes().decode("utf-8")
    assert doc.text[doc.body_start :].startswith(
        "The Hong Kong Special Administrative Region government will earmark"
    )


def test_seed_003_day_first_date_outlet_and_title() -> None:
    path = SEEDS / SEED_003
    doc = read_document(path)
    assert doc.source == SEED_003
    assert doc.title is not None
    assert doc.title.startswith("Sun Dong: The urban areas")
    assert "\n" not in doc.title
    # "16:30 04/02/2026" is 4 February: day-first, and the text says "On February 4th".
    assert doc.published == "2026-02-04"
    assert "On February 4th" in doc.text
    assert doc.outlet == "GMT Eight"
    assert doc.text == path.read_bytes().decode("utf-8")
    assert doc.text[doc.body_start :].startswith("On February 4th, Professor Sun Dong")


@pytest.mark.parametrize(
    ("value", "context", "expected"),
    [
        ("16:30 04/02/2026", "", "2026-02-04"),  # day-first by default
        ("16:30 04/02/2026", "On February 4th, the Secretary", "2026-02-04"),
        ("16:30 04/02/2026", "On April 2nd, the Secretary", "2026-04-02"),  # context decides
        ("13/02/2026", "On February 2nd", "2026-02-13"),  # only one reading is a date
        ("date 2026-02-27 Some headline", "", "2026-02-27"),
        ("Published: 4 Feb 2026", "", "2026-02-04"),
        ("February 4th, 2026", "", "2026-02-04"),
        ("no date here", "", None),
        ("31/02/2026", "", None),
    ],
)
def test_parse_date(value: str, context: str, expected: str | None) -> None:
    date = parse_date(value, context)
    assert (date.isoformat() if date else None) == expected


# ----------------------------------------------------------------------------- formats

MARKDOWN_FRONT = """---
title: "Harbour ferry sets record"
date: 2026-03-05
url: https://example.com/ferry
---

# Harbour ferry sets record

The harbour ferry Lantern carried 4,321 passengers on its first day of service.
Officials said a second boat would join the route next spring.
"""

MARKDOWN_HEADING = """# Harbour ferry sets record

The harbour ferry Lantern carried 4,321 passengers on its first day of service.
"""

HTML = """<!doctype html><html><head><title>Harbour ferry sets record | Daily Port</title>
<meta property="og:title" content="Harbour ferry sets record">
<meta property="article:published_time" content="2026-03-05T08:00:00Z">
<link rel="canonical" href="https://example.com/ferry"></head>
<body><nav><a href="/">Home</a> | <a href="/news">News</a> | Subscribe now</nav>
<article><h1>Harbour ferry sets record</h1>
<p>The harbour ferry Lantern carried 4,321 passengers on its first day of service, the
operator said on Tuesday. The vessel runs between Quarry Point and Lantern Bay every
twenty minutes.</p>
<p>Officials said a second boat would join the route next spring if demand stays high,
and fares would stay at HK$12 for adults.</p>
</article><footer>Copyright 2026 Daily Port. All rights reserved. Cookie policy.</footer>
</body></html>"""


def test_markdown_front_matter_gives_metadata_and_body_follows_it() -> None:
    doc = parse_document(MARKDOWN_FRONT.encode(), "ferry.md")
    assert doc.title == "Harbour ferry sets record"
    assert doc.published == "2026-03-05"
    assert doc.url == "https://example.com/ferry"
    assert doc.text == MARKDOWN_FRONT  # verbatim, front matter included
    body = doc.text[doc.body_start :]
    assert "title:" not in body and "---" not in body
    assert "4,321 passengers" in body


def test_markdown_heading_is_the_title_without_its_marker() -> None:
    doc = parse_document(MARKDOWN_HEADING.encode(), "ferry.md")
    assert doc.title == "Harbour ferry sets record"
    assert doc.published is None
    assert doc.text == MARKDOWN_HEADING
    assert "4,321 passengers" in doc.text[doc.body_start :]


def test_markdown_front_matter_with_windows_line_endings() -> None:
    text = MARKDOWN_FRONT.replace("\n", "\r\n")
    doc = parse_document(text.encode(), "ferry.md")
    assert doc.title == "Harbour ferry sets record"
    assert doc.published == "2026-03-05"
    assert doc.text == text
    assert "title:" not in doc.text[doc.body_start :]


def test_html_body_extracted_without_boilerplate() -> None:
    doc = parse_document(HTML.encode(), "ferry.html")
    assert doc.title == "Harbour ferry sets record"
    assert doc.published == "2026-03-05"
    assert doc.url == "https://example.com/ferry"
    assert "4,321 passengers" in doc.text
    assert "HK$12 for adults" in doc.text
    for boilerplate in ("Subscribe now", "Cookie policy", "All rights reserved", "<p>"):
        assert boilerplate not in doc.text


def test_html_without_an_article_is_refused() -> None:
    with pytest.raises(InvalidDocument, match="no article body"):
        parse_document(b"<html><body><script>var a = 1;</script></body></html>", "x.html")


def test_json_article_fields() -> None:
    data = {
        "title": "Harbour ferry sets record",
        "text": "The harbour ferry Lantern carried 4,321 passengers. A second boat will follow.",
        "published": "2026-03-05T10:00:00Z",
        "url": "https://example.com/ferry",
    }
    doc = parse_document(json.dumps(data).encode(), "ferry.json")
    assert doc == Document(
        source="ferry.json",
        text=data["text"],
        title="Harbour ferry sets record",
        published="2026-03-05",
        url="https://example.com/ferry",
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[1, 2]", "must be an object"),
        (b'{"title": "x"}', "non-empty string 'text'"),
        (b'{"text": "Body.", "published": "someday"}', "not a date"),
        (b'{"text": "Body.", "title": 3}', "'title' must be a string"),
        (b'{"text": ', "invalid JSON"),
    ],
)
def test_bad_json_articles(payload: bytes, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        parse_document(payload, "bad.json")


def test_plain_text_without_header_starts_at_zero() -> None:
    text = "The ferry carried 4,321 passengers. A second boat will follow next spring.\n"
    doc = parse_document(text.encode(), "plain.txt")
    assert (doc.title, doc.published, doc.body_start, doc.text) == (None, None, 0, text)


def test_utf8_bom_is_decoded_away() -> None:
    doc = parse_document("\ufeffThe ferry sailed. It was full.".encode(), "bom.txt")
    assert doc.text == "The ferry sailed. It was full."


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("raw", "name", "message"),
    [
        (b"", "empty.txt", "empty"),
        (b"  \n\t\n", "blank.txt", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.txt", "binary"),
        ("caf\u00e9 au lait, d\u00e9j\u00e0 vu".encode("latin-1"), "latin.txt", "not UTF-8"),
        (b"some text", "notes.docx", "unsupported file type"),
    ],
)
def test_unreadable_articles_say_what_and_how(raw: bytes, name: str, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message) as caught:
        parse_document(raw, name)
    assert name in str(caught.value)


def test_non_utf8_message_suggests_a_conversion() -> None:
    with pytest.raises(InvalidDocument, match="iconv"):
        parse_document("d\u00e9j\u00e0".encode("latin-1"), "latin.txt")


@pytest.mark.parametrize("source", ["", "../etc/passwd", "a/b.txt", ".hidden", "x\n.txt", "..."])
def test_source_ids_must_be_plain_file_names(source: str) -> None:
    with pytest.raises(InvalidDocument):
        validate_source(source)


def test_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(InvalidDocument, match="no such file or folder"):
        collect_paths([tmp_path / "missing.txt"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "picture.png").write_bytes(b"\x89PNG")
    with pytest.raises(InvalidDocument, match="no articles in this folder"):
        collect_paths([tmp_path / "empty"])
    with pytest.raises(InvalidDocument, match="no such file"):
        read_document(tmp_path / "missing.txt")


def test_folders_expand_to_sorted_supported_files(tmp_path: Path) -> None:
    for name in ("b.txt", "a.md", "c.json", "skip.png", ".hidden.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.html").write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in collect_paths([tmp_path])]
    assert found == ["a.md", "b.txt", "c.json", "sub/d.html"]


def test_markdown_front_matter_without_title_falls_back_to_the_heading() -> None:
    text = "---\ndate: 4 February 2026\n---\n# Northern Metropolis plan\n\nThe plan moved on.\n"
    doc = parse_document(text.encode(), "plan.md")
    assert doc.title == "Northern Metropolis plan"
    assert doc.published == "2026-02-04"
    assert "date:" not in doc.text[doc.body_start :]


def test_markdown_with_only_front_matter_is_refused() -> None:
    with pytest.raises(InvalidDocument, match="only front matter"):
        parse_document(b"---\ntitle: x\n---\n\n", "x.md")
