"""Articles in: read .txt/.md/.html/.json files into verbatim `Document` records.

The stored text is kept exactly as read (after UTF-8 decoding) because every citation
offset points into it. Metadata (title, published date, outlet) is parsed from the
header lines that scraped news text tends to carry, without touching the text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InvalidDocument

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json")
MAX_SOURCE_LEN = 200
# Articles larger than this are almost certainly not news articles (a dump, a book, a log).
MAX_DOCUMENT_BYTES = 2_000_000

_SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ ()+,=@-]*$")


@dataclass(frozen=True)
class Document:
    """One article: verbatim text plus metadata; `body_start` is where the article body begins."""

    source: str
    text: str
    title: str | None = None
    published: str | None = None  # ISO date, YYYY-MM-DD
    outlet: str | None = None
    url: str | None = None
    body_start: int = 0

    def __post_init__(self) -> None:
        validate_source(self.source)
        if not self.text.strip():
            raise InvalidDocument(f"{self.source}: the article text is empty; give it some text")
        if not 0 <= self.body_start < len(self.text):
            raise InvalidDocument(
                f"{self.source}: body_start {self.body_start} is outside the text "
                f"(length {len(self.text)})"
            )
        if self.published is not None:
            try:
                dt.date.fromisoformat(self.published)
            except ValueError:
                raise InvalidDocument(
                    f"{self.source}: published date {self.published!r} is not YYYY-MM-DD"
                ) from None

    @property
    def content_hash(self) -> str:
        """sha256 of the text alone: the same article under two names has the same hash."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def doc_id(self) -> str:
        """Content id: sha256 of source id and text (haystack-style)."""
        return hashlib.sha256(f"{self.source}\0{self.text}".encode()).hexdigest()[:32]


def validate_source(source: str) -> str:
    """Check a source id: a plain file name, no path parts or control characters."""
    if not isinstance(source, str) or not source:
        raise InvalidDocument("source id is empty: give a file name such as 'article.txt'")
    if len(source) > MAX_SOURCE_LEN:
        raise InvalidDocument(
            f"source id is {len(source)} characters long; the limit is {MAX_SOURCE_LEN}"
        )
    if source in {".", ".."} or not _SOURCE_RE.match(source):
        raise InvalidDocument(
            f"source id {source!r} is not a plain file name: use letters, digits, spaces and "
            "._()+,=@- only, starting with a letter or digit (no slashes or control characters)"
        )
    return source


# ---------------------------------------------------------------------------- decoding


def decode_text(raw: bytes, name: str) -> str:
    """Decode article bytes as UTF-8, refusing empty, binary and non-UTF-8 input clearly."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(
            f"{name}: {len(raw):,} bytes is larger than the {MAX_DOCUMENT_BYTES:,}-byte limit "
            "for one article; split it into articles"
        )
    if not raw.strip():
        raise InvalidDocument(f"{name}: the file is empty; an article needs some text")
    if b"\x00" in raw[:8192]:
        raise InvalidDocument(
            f"{name}: this is a binary file, not text; give a .txt, .md, .html or .json article"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDocument(
            f"{name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. 'iconv -f latin1 -t utf-8'"
        ) from None
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.01 * min(len(text), 8192):
        raise InvalidDocument(
            f"{name}: the text is full of control characters; is it a binary file?"
        )
    if not text.strip():
        raise InvalidDocument(f"{name}: the file holds only whitespace; give it some text")
    return text


# ---------------------------------------------------------------------------- dates

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        "january february march april may june july august september october november december"
        .split()
    )
}
_ISO_RE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+Z?)?\b")
_NUMERIC_RE = re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b")
_WORDY_RE = re.compile(
    r"\b(?:(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})"
    r"|([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))\b"
)
_MENTION_RE = re.compile(r"\b([A-Za-z]{3,9})\s+(\d{1,2})(?:st|nd|rd|th)?\b")


def _month(word: str) -> int | None:
    word = word.lower()
    for name, number in _MONTHS.items():
        if len(word) >= 3 and name.startswith(word):
            return number
    return None


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_date(value: str, context: str = "") -> dt.date | None:
    """Find a calendar date in `value`; numeric d/m ambiguity is settled from `context`.

    "04/02/2026" could be 4 February or April 2. News text usually names the day
    ("On February 4th"), so a month-and-day mention in the context decides; without
    one, day-first wins (the convention of the outlets we ingest: HK, UK, EU).
    """
    if m := _ISO_RE.search(value):
        return _safe_date(int(m[1]), int(m[2]), int(m[3]))
    if m := _WORDY_RE.search(value):
        if m[1]:
            month = _month(m[2])
            return _safe_date(int(m[3]), month, int(m[1])) if month else None
        month = _month(m[4])
        return _safe_date(int(m[6]), month, int(m[5])) if month else None
    if m := _NUMERIC_RE.search(value):
        a, b, year = int(m[1]), int(m[2]), int(m[3])
        day_first = _safe_date(year, b, a)
        month_first = _safe_date(year, a, b)
        if day_first and month_first and day_first != month_first:
            mentioned = {
                (month, int(day))
                for word, day in _MENTION_RE.findall(context[:2000])
                if (month := _month(word))
            }
            if (month_first.month, month_first.day) in mentioned and (
                day_first.month,
                day_first.day,
            ) not in mentioned:
                return month_first
        return day_first or month_first
    return None


# ---------------------------------------------------------------------------- headers

_LABEL_RE = re.compile(
    r"^\s*(date|published|updated|posted|time|title|source|outlet|publisher|by|author|"
    r"avatar|url|link)\s*[:：]?\s*(.*?)\s*$",
    re.IGNORECASE,
)
_DATE_LABELS = {"date", "published", "updated", "posted", "time"}
_OUTLET_LABELS = {"source", "outlet", "publisher"}
# A header line is short; the body starts at the first long line or after the header block.
_MAX_HEADER_LINE = 250
_MAX_HEADER_LINES = 8


@dataclass(frozen=True)
class _Header:
    title: str | None
    published: str | None
    outlet: str | None
    url: str | None
    body_start: int


def _lines_with_offsets(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.splitlines(keepends=True):
        yield offset, line.rstrip("\r\n")
        offset += len(line)


def parse_header(text: str) -> _Header:
    """Read title, date, outlet and URL from the leading header lines of scraped article text.

    Handles the shapes seen in scraped news: a label with its value on the same line
    ("date 2026-02-27 <title>", "Published: 4 Feb 2026"), a label on its own line with the
    value below it ("date" / "16:30 04/02/2026"), a first-line title, and an "avatar" line
    followed by the outlet's name.
    """
    title = published = outlet = url = None
    pending: str | None = None  # a label whose value is on the next line
    body_start = 0
    header_lines = 0
    saw_metadata = False
    first_text: tuple[int, str] | None = None
    lines = list(_lines_with_offsets(text))
    for index, (offset, raw_line) in enumerate(lines):
        line = raw_line.strip()
        if not line:
            continue
        if header_lines >= _MAX_HEADER_LINES or len(line) > _MAX_HEADER_LINE:
            body_start = offset
            break
        label_match = _LABEL_RE.match(line)
        label = label_match[1].lower() if label_match else None
        rest = label_match[2] if label_match else ""
        if pending is not None:
            # The value line of a label that stood alone.
            if pending in _DATE_LABELS and (date := parse_date(line, text)):
                published = published or date.isoformat()
            elif pending == "avatar" or pending in _OUTLET_LABELS:
                outlet = outlet or line
            elif pending == "title":
                title = title or line
            elif pending in {"url", "link"}:
                url = url or line
            pending = None
            saw_metadata = True
            header_lines += 1
            continue
        if label and not rest:
            pending = label
            header_lines += 1
            continue
        if label and label in _DATE_LABELS and (date := parse_date(rest, text)):
            published = published or date.isoformat()
            # "date 2026-02-27 <title>": what follows the date on the line is the title.
            date_match = _ISO_RE.search(rest) or _WORDY_RE.search(rest) or _NUMERIC_RE.search(rest)
            trailing = rest[date_match.end():].strip(" -|:") if date_match else ""
            if trailing and not title:
                title = trailing
            saw_metadata = True
            header_lines += 1
            continue
        if label in {"title"} and rest:
            title, saw_metadata = title or rest, True
            header_lines += 1
            continue
        if label in _OUTLET_LABELS | {"by", "author"} and rest and len(rest) < 80:
            if label in _OUTLET_LABELS:
                outlet = outlet or rest
            saw_metadata = True
            header_lines += 1
            continue
        if label in {"url", "link"} and rest:
            url, saw_metadata = url or rest, True
            header_lines += 1
            continue
        # A plain text line: the title if it comes first and metadata follows it.
        if first_text is None and not saw_metadata and index + 1 < len(lines):
            first_text = (offset, line)
            header_lines += 1
            continue
        body_start = offset
        break
    else:
        body_start = 0
    if first_text is not None:
        if saw_metadata:
            title = title or first_text[1]
        elif body_start > first_text[0]:
            # A short first line followed by a blank line reads as a headline.
            nxt = text[first_text[0] + len(first_text[1]) :][:2]
            if len(first_text[1]) <= 150 and nxt.startswith(("\n\n", "\r\n")):
                title = title or first_text[1]
            else:
                body_start = first_text[0]
    if not saw_metadata and title is None:
        body_start = 0
    if body_start >= len(text) or not text[body_start:].strip():
        body_start = 0
    return _Header(title, published, outlet, url, body_start)


# ---------------------------------------------------------------------------- formats


def _normalise_date_field(value: object, name: str, field: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidDocument(f"{name}: '{field}' must be a date string such as '2026-02-27'")
    date = parse_date(value)
    if date is None:
        raise InvalidDocument(
            f"{name}: '{field}' {value!r} is not a date I can read; use YYYY-MM-DD"
        )
    return date.isoformat()


def _optional_str(value: object, name: str, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidDocument(f"{name}: '{field}' must be a string, got {type(value).__name__}")
    return value.strip() or None


def document_from_text(
    text: str,
    source: str,
    *,
    title: str | None = None,
    published: str | None = None,
    url: str | None = None,
) -> Document:
    """Build a Document from plain article text; header metadata fills what is not given."""
    if not text.strip():
        raise InvalidDocument(f"{source}: the article text is empty; give it some text")
    header = parse_header(text)
    return Document(
        source=validate_source(source),
        text=text,
        title=title or header.title,
        published=_normalise_date_field(published, source, "published") or header.published,
        outlet=header.outlet,
        url=url or header.url,
        body_start=header.body_start,
    )


_FRONT_MATTER_RE = re.compile(r"---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", re.DOTALL)
_MD_TITLE_RE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _from_markdown(text: str, source: str) -> Document:
    """Markdown: YAML-style front matter and the first `# heading` give the metadata."""
    meta: dict[str, str] = {}
    front_end = 0
    if front := _FRONT_MATTER_RE.match(text):
        for line in front[1].splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("'\"")
        front_end = front.end()
    if not text[front_end:].strip():
        raise InvalidDocument(f"{source}: only front matter, no article text; add the body")
    # Header lines of scraped text may follow the front matter; parse the part after it.
    header = parse_header(text[front_end:])
    heading = _MD_TITLE_RE.search(text, front_end)
    header_title = header.title.lstrip("#").strip() if header.title else None
    return Document(
        source=validate_source(source),
        text=text,
        title=meta.get("title") or (heading[1] if heading else None) or header_title or None,
        published=_normalise_date_field(
            meta.get("date") or meta.get("published"), source, "published"
        )
        or header.published,
        outlet=header.outlet,
        url=meta.get("url") or header.url,
        body_start=front_end + header.body_start,
    )


def _from_html(html: str, source: str) -> Document:
    import trafilatura  # heavy (lxml); only needed for HTML

    extracted = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, include_tables=True
    )
    text = getattr(extracted, "text", None) if extracted is not None else None
    if not text or not text.strip():
        raise InvalidDocument(
            f"{source}: no article body found in this HTML page; save the article itself, "
            "or give its text as .txt"
        )
    published = getattr(extracted, "date", None)
    return document_from_text(
        text,
        source,
        title=getattr(extracted, "title", None),
        published=published if isinstance(published, str) else None,
        url=getattr(extracted, "url", None),
    )


def document_from_json(data: object, source: str) -> Document:
    """Build a Document from a JSON object {text, title?, published?, url?}."""
    if not isinstance(data, dict):
        raise InvalidDocument(
            f"{source}: a JSON article must be an object with at least a 'text' field"
        )
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidDocument(f"{source}: the JSON article needs a non-empty string 'text'")
    return document_from_text(
        text,
        source,
        title=_optional_str(data.get("title"), source, "title"),
        published=_optional_str(data.get("published"), source, "published"),
        url=_optional_str(data.get("url"), source, "url"),
    )


def parse_document(raw: bytes, source: str) -> Document:
    """Turn the bytes of an article file into a Document, by the file name's suffix."""
    validate_source(source)
    suffix = Path(source).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidDocument(
            f"{source}: unsupported file type {suffix or '(none)'!r}; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    text = decode_text(raw, source)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidDocument(
                f"{source}: invalid JSON ({exc.msg} at line {exc.lineno}); expected "
                '{"title": ..., "text": ..., "published": ..., "url": ...}'
            ) from None
        return document_from_json(data, source)
    if suffix in {".html", ".htm"}:
        return _from_html(text, source)
    if suffix in {".md", ".markdown"}:
        return _from_markdown(text, source)
    return document_from_text(text, source)


def read_document(path: Path) -> Document:
    """Read one article file; its file name becomes the source id."""
    if not path.exists():
        raise InvalidDocument(f"{path}: no such file; check the path")
    if not path.is_file():
        raise InvalidDocument(f"{path}: not a regular file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidDocument(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_document(raw, path.name)


def collect_paths(paths: Iterable[Path]) -> list[Path]:
    """Expand files and folders into article files (folders: supported suffixes, sorted)."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InvalidDocument(f"{path}: no such file or folder; check the path")
        if path.is_dir():
            inside = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not inside:
                raise InvalidDocument(
                    f"{path}: no articles in this folder (looked for "
                    f"{', '.join(SUPPORTED_SUFFIXES)} files)"
                )
            found.extend(inside)
        else:
            found.append(path)
    return found
