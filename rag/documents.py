"""Articles in: read .txt/.md/.html/.json files into verbatim `Document` records.

The stored text is kept exactly as read (after UTF-8 decoding) because every citation
offset points into it. Metadata (title, published date, outlet, URL) comes from the
article's header (`rag.headers`), its HTML tags (`rag.html_meta`) or its JSON fields,
without touching the text; a person's `Overrides` replace what the header says.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from rag.dates import find_date, parse_date, read_date
from rag.errors import InvalidDocument
from rag.headers import FIELD_OF_KEY, normalise_key, parse_header, split_front_matter
from rag.html_meta import html_metadata

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


# ---------------------------------------------------------------------------- overrides

_MAX_TITLE_CHARS = 1000


@dataclass(frozen=True)
class Overrides:
    """Metadata a person gives for one article; it replaces what the article's header says."""

    title: str | None = None
    published: str | None = None  # ISO date, YYYY-MM-DD
    url: str | None = None

    @classmethod
    def checked(
        cls,
        *,
        title: str | None = None,
        published: str | None = None,
        url: str | None = None,
        prefix: str = "",
    ) -> Overrides:
        """Validate given metadata (None: not given); messages call a field `prefix + name`."""
        if title is not None:
            title = title.strip()
            if not title:
                raise InvalidDocument(f"{prefix}title is empty; give the headline or leave it out")
            if "\n" in title or "\r" in title:
                raise InvalidDocument(f"{prefix}title must be one line, not several")
            if len(title) > _MAX_TITLE_CHARS:
                raise InvalidDocument(
                    f"{prefix}title is {len(title):,} characters long; the limit is "
                    f"{_MAX_TITLE_CHARS:,}"
                )
        if published is not None:
            try:
                published = read_date(published).isoformat()
            except ValueError as exc:
                raise InvalidDocument(
                    f"{prefix}published {published!r} is not a usable date: {exc}; give it as "
                    "YYYY-MM-DD, e.g. 2026-02-25"
                ) from None
        if url is not None:
            url = url.strip()
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.netloc or " " in url:
                raise InvalidDocument(
                    f"{prefix}url {url!r} is not a web address; give it as "
                    "https://host/path"
                )
        return cls(title=title, published=published, url=url)

    def apply(self, doc: Document) -> Document:
        """`doc` with the given fields replaced (validated again by `Document`)."""
        given = {k: v for k, v in vars(self).items() if v is not None}
        return replace(doc, **given) if given else doc


def missing_date_hint(source: str) -> str:
    """How to give an article of this file type its date, for a note to the user."""
    suffix = Path(source).suffix.lower()
    if suffix == ".json":
        return 'add a "published": "YYYY-MM-DD" field'
    if suffix in {".html", ".htm"}:
        return 'add <meta property="article:published_time" content="YYYY-MM-DD"> to its head'
    if suffix in {".md", ".markdown"}:
        return 'add "date: YYYY-MM-DD" to its front matter or a "Date: YYYY-MM-DD" line'
    return 'add a "Date: YYYY-MM-DD" line to its header'


# ---------------------------------------------------------------------------- formats


def _field_date(value: object, name: str, field: str) -> str | None:
    """A date field of a structured article (JSON, front matter): ISO, or a clear error."""
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


def _read_text(
    text: str,
    source: str,
    fields: dict[str, str | None] | None = None,
    hints: tuple[str | None, ...] = (),
) -> Document:
    """Front matter, then header lines; `fields` (from HTML or JSON metadata) win over both."""
    if not text.strip():
        raise InvalidDocument(f"{source}: the article text is empty; give it some text")
    front, front_end = split_front_matter(text)
    if front_end and not text[front_end:].strip():
        raise InvalidDocument(f"{source}: only front matter, no article text; add the body")
    given = {k: v for k, v in (fields or {}).items() if v}
    known: dict[str, str | None] = {**front, **given}
    if "published" not in given:
        # Front matter dates are header lines like any other: unreadable means undated (and
        # `rag add` says so). An "updated" date stands in only when there is no other.
        dates = (parse_date(front[k]) for k in ("published", "updated") if k in front)
        known["published"] = next((d.isoformat() for d in dates if d), None)
    header = parse_header(
        text[front_end:], title_hints=(known.get("title"), *hints)
    )
    return Document(
        source=validate_source(source),
        text=text,
        title=known.get("title") or header.title,
        published=known.get("published") or header.published,
        outlet=known.get("outlet") or header.outlet,
        url=known.get("url") or header.url,
        body_start=front_end + header.body_start,
    )


def document_from_text(
    text: str,
    source: str,
    *,
    title: str | None = None,
    published: str | None = None,
    url: str | None = None,
) -> Document:
    """Build a Document from plain article text; given metadata overrides its header."""
    # "" means "not given" here, as in an API body or a form left blank.
    overrides = Overrides.checked(title=title or None, published=published or None, url=url or None)
    return overrides.apply(_read_text(text, source, hints=(overrides.title,)))


def _from_markdown(text: str, source: str) -> Document:
    """Markdown: front matter, a leading `# heading` and header lines give the metadata."""
    return _read_text(text, source)


def _from_html(html: str, source: str) -> Document:
    """HTML: the page's own metadata tags, and the article body trafilatura extracts."""
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
    meta = html_metadata(html)
    # trafilatura's own date is not used: without a date tag it takes one from the body text.
    published = find_date(meta.published) if meta.published else None
    found_title = getattr(extracted, "title", None)
    found_url = getattr(extracted, "url", None)
    fields: dict[str, str | None] = {
        "title": meta.title or (found_title if isinstance(found_title, str) else None)
        or meta.page_title,
        "published": published.date.isoformat() if published else None,
        "url": meta.url or (found_url if isinstance(found_url, str) else None),
        "outlet": meta.outlet,
    }
    return _read_text(text, source, fields, hints=(found_title, meta.page_title))


_TEXT_KEYS = ("text", "body", "content", "articleBody", "article")
_DOCUMENTED_KEYS = {"title", "published", "url"}
_JSON_FIELDS = {"title", "published", "updated", "url", "outlet"}


def document_from_json(data: object, source: str) -> Document:
    """Build a Document from a JSON object {text, title?, published?, url?} (or its aliases)."""
    if not isinstance(data, dict):
        raise InvalidDocument(
            f"{source}: a JSON article must be an object with at least a 'text' field"
        )
    text = next((v for k in _TEXT_KEYS if isinstance(v := data.get(k), str) and v.strip()), None)
    if text is None:
        raise InvalidDocument(f"{source}: the JSON article needs a non-empty string 'text'")
    fields: dict[str, str | None] = {}
    for key, value in data.items():
        name = FIELD_OF_KEY.get(normalise_key(str(key)))
        if name is None or name not in _JSON_FIELDS or fields.get(name):
            continue
        if key in _DOCUMENTED_KEYS:
            # The documented fields must hold what they say; a bad value is the caller's error.
            read = _field_date if name == "published" else _optional_str
            fields[name] = read(value, source, key)
        elif name == "outlet":
            # "source": "Reuters" or NewsAPI's "source": {"id": …, "name": "Reuters"}
            outlet = value.get("name") if isinstance(value, dict) else value
            fields[name] = outlet.strip() or None if isinstance(outlet, str) else None
        elif isinstance(value, str):
            # Aliases (datePublished, headline, link, …) count when they read; else skipped.
            if name in {"published", "updated"}:
                date = parse_date(value)
                fields[name] = date.isoformat() if date else None
            else:
                fields[name] = value.strip() or None
    # An "updated" date stands in only when the article gives no publication date.
    fields["published"] = fields.get("published") or fields.pop("updated", None)
    fields.pop("updated", None)
    return _read_text(text, source, fields)


def parse_document(raw: bytes, source: str, overrides: Overrides | None = None) -> Document:
    """Turn the bytes of an article file into a Document, by the file name's suffix."""
    doc = _parse_document(raw, source)
    return overrides.apply(doc) if overrides else doc


def _parse_document(raw: bytes, source: str) -> Document:
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
        except RecursionError:
            raise InvalidDocument(
                f"{source}: the JSON is nested too deeply to be an article; expected "
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
