"""Article headers: title, date, URL and outlet from the lines before the body.

Saved news text starts with a few short lines of metadata in no fixed order: a title,
a URL, a date, a byline, "Key: value" lines, e-mail headers, front matter. The header
is read block by block (blocks are separated by blank lines): a line is *metadata* if
it is one of those shapes, and the header ends at the first text that is neither
metadata nor the title. The text itself is never changed; `body_start` is an offset.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email.header import decode_header, make_header

from rag.dates import find_date, only_filler, whole_date

# Header lines are short; a longer line is article text.
MAX_HEADER_LINE = 250
_MAX_BLOCKS = 5  # blocks looked at before giving up on finding the body
_MAX_HEADER_LINES = 24  # e-mail and front-matter headers run to a dozen lines
_MAX_TEXT_RUN = 2  # text lines inside a header block (title, standfirst) before it is body
_HEADLINE_ALONE = 150  # a lone first line this short, then a blank line, is a headline

# Keys (normalised: lower case, words split by one space) → the field they give.
_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("title", "headline", "subject", "heading", "article title", "og title"),
    "published": (
        "date", "published", "publish date", "published date", "publication date",
        "date published", "published on", "published at", "pub date", "pubdate", "posted",
        "posted on", "posted at", "first published", "dated", "time", "datetime",
        "release date", "issued", "sent",
    ),
    "updated": (
        "updated", "last updated", "modified", "last modified", "date modified",
        "updated on", "updated at", "lastmod",
    ),
    "url": (
        "url", "link", "source url", "original url", "article url", "canonical",
        "canonical url", "permalink", "web", "archived at", "content location", "content base",
    ),
    "outlet": (
        "source", "outlet", "publisher", "publication", "newspaper", "site", "site name",
        "organization", "organisation", "agency", "news source", "media", "avatar",
    ),
    "author": ("author", "authors", "by", "byline", "writer", "reporter", "written by", "from"),
    "other": (
        "to", "cc", "bcc", "reply to", "message id", "mime version", "content type",
        "content transfer encoding", "return path", "received", "tags", "keywords",
        "category", "categories", "section", "language", "lang", "slug", "id", "word count",
        "location", "dateline",
    ),
}
FIELD_OF_KEY = {key: name for name, keys in _KEYS.items() for key in keys}
# Labels that may stand alone on a line with their value on the next one ("date" / "16:30
# 04/02/2026", "avatar" / "GMT Eight"): scraped pages lose the markup between them.
_LONE_LABELS = {k for k, f in FIELD_OF_KEY.items() if f not in {"other", "author"} and " " not in k}

_KEY_RE = re.compile(r"^([A-Za-z][A-Za-z0-9 _.-]{0,30}?)\s*[:：]\s*(.*)$")
_URL = r"(?:https?://|www\.)[^\s<>()\[\]]+"
_URL_LINE_RE = re.compile(rf"^(?:<({_URL})>|\[[^\]]*\]\(({_URL})\)|({_URL}))$", re.IGNORECASE)
_URL_IN_RE = re.compile(_URL, re.IGNORECASE)
_SEPARATOR_RE = re.compile(r"^[-=_*~#•·. ]{3,}$")
_MBOX_RE = re.compile(r"^From \S+ +\w{3} \w{3} +\d")
_NAME = r"(?:[A-Z][\w.'’-]*|and|&|de|da|van|von|der|bin|al)"
# "By Jane Doe", "By Jane Doe and John Roe, Reuters | 25 Feb 2026"; not "By the time…".
_BYLINE_RE = re.compile(
    rf"^(?:[Bb]y|BY|[Ww]ritten by|[Rr]eporting by|[Ww]ords by)\s+([A-Z][\w.'’-]*(?:[ ,]+{_NAME})*)"
    r"((?:\s*[,|·•—–(/-]|\s+(?:on|at|for|in|published|updated|posted)\b).*)?$"
)
_SEGMENT_SPLIT_RE = re.compile(r"\s+[|·•—–]\s+|\s+-\s+")
_UPDATED_BEFORE_RE = re.compile(r"(?:updated|modified)\W*(?:on|at)?\W*$", re.IGNORECASE)
_MARKUP_RE = re.compile(r"\*\*|__|^[>*_\s]+|[*_\s]+$")
_HEADING_RE = re.compile(r"^#{1,2}\s+(.+?)[\s#]*$")
_REPLY_PREFIX_RE = re.compile(r"^(?:(?:re|fwd?|aw|wg)\s*:\s*)+", re.IGNORECASE)
_TIME_TAIL_RE = re.compile(
    r"^(?:\s|[,;|·•()\-–—:]|\d{1,2}[:.]\d{2}(?:[:.]\d{2})?|[AaPp]\.?[Mm]\.?(?![a-z])"
    r"|(?:UTC|GMT|HKT|Z)(?![a-z])|[+-]\d{2}:?\d{2})*"
)


@dataclass(frozen=True)
class Header:
    """Metadata read from an article's header; `body_start` is where its body begins."""

    title: str | None = None
    published: str | None = None  # ISO date, YYYY-MM-DD
    outlet: str | None = None
    url: str | None = None
    body_start: int = 0


def normalise_key(key: str) -> str:
    """A metadata key in one spelling: 'datePublished', 'Date_Published:' → 'date published'."""
    key = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key.strip())
    return re.sub(r"[\s_.:-]+", " ", key).strip().lower()


def decode_words(value: str) -> str:
    """Undo RFC 2047 encoded words ('=?utf-8?q?Caf=C3=A9?=') in an e-mail header value."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


# ---------------------------------------------------------------------------- lines


@dataclass(frozen=True)
class _Line:
    offset: int
    raw: str
    text: str  # stripped, Markdown emphasis removed


@dataclass
class _Facts:
    """What one line says; kind "text" is anything that is not metadata."""

    kind: str
    title: str | None = None
    date: dt.date | None = None
    rank: int = 0  # 2: a publication date, 1: an "updated" date
    url: str | None = None
    outlet: str | None = None
    label: str | None = None  # a lone label: the field its next line holds

    @property
    def meta(self) -> bool:
        return self.kind != "text"


def _blocks(text: str) -> list[list[_Line]]:
    """The first few blank-line-separated blocks of lines, with their offsets."""
    blocks: list[list[_Line]] = [[]]
    offset = 0
    for count, raw in enumerate(text.splitlines(keepends=True)):
        line = raw.rstrip("\r\n")
        if line.strip():
            blocks[-1].append(_Line(offset, line, _MARKUP_RE.sub("", line.strip())))
        elif blocks[-1]:
            if len(blocks) > _MAX_BLOCKS:
                break
            blocks.append([])
        offset += len(raw)
        if count > 200:
            break
    return [b for b in blocks if b]


def _value_url(value: str) -> str | None:
    value = value.strip()
    if m := _URL_LINE_RE.match(value):
        return next(g for g in m.groups() if g)
    return None


def _date_facts(
    value: str, rank: int, context: str, *, kind: str = "key", titled: bool = True
) -> _Facts:
    """A date label's value; words after the date on the line are the title ("date … Title")."""
    found = find_date(value, context)
    if found is None:
        return _Facts(kind)
    if _UPDATED_BEFORE_RE.search(value[: found.start]):
        rank = 1
    tail = value[found.end :]
    if filler := _TIME_TAIL_RE.match(tail):
        tail = tail[filler.end() :]
    tail = tail.strip()
    title = None
    if (
        titled
        and len(tail.split()) >= 2
        and tail[0].isupper()
        and find_date(tail) is None
        and only_filler(value[: found.start])
    ):
        title = tail
    return _Facts(kind, title=title, date=found.date, rank=rank)


def _key_facts(key: str, value: str, context: str) -> _Facts | None:
    """A "Key: value" line; None if the key is not one a header uses."""
    name = FIELD_OF_KEY.get(normalise_key(key))
    if name is None:
        return None
    value = decode_words(value.strip())
    if name in {"published", "updated"}:
        return _date_facts(value, 2 if name == "published" else 1, context)
    if name == "title":
        if normalise_key(key) == "subject":
            value = _REPLY_PREFIX_RE.sub("", value).strip()  # "Fwd: Headline" → "Headline"
        return _Facts("key", title=value or None)
    if name == "url":
        url = _value_url(value) or (m[0] if (m := _URL_IN_RE.search(value)) else None)
        return _Facts("key", url=url)
    if name == "outlet":
        if url := _value_url(value):
            return _Facts("key", url=url)
        link = re.fullmatch(r"\[([^\]]+)\]\(([^)\s]+)\)", value)
        if link:
            return _Facts("key", outlet=link[1], url=link[2])
        return _Facts("key", outlet=value or None)
    return _Facts("key")


def _classify(line: _Line, context: str) -> _Facts:
    """What a single header line is, judged on its own."""
    text = line.text
    if len(text) > MAX_HEADER_LINE:
        return _Facts("text")
    if _SEPARATOR_RE.match(text) or _MBOX_RE.match(text):
        return _Facts("sep")
    if url := _value_url(text):
        return _Facts("url", url=url)
    if key_match := _KEY_RE.match(text):
        key, value = key_match[1], key_match[2]
        if not value.strip():
            name = normalise_key(key)
            if name in _LONE_LABELS:
                return _Facts("label", label=FIELD_OF_KEY[name])
        elif (facts := _key_facts(key, value, context)) is not None:
            return facts
        if len(normalise_key(key).split()) <= 4:
            return _Facts("otherkey")
    if normalise_key(text) in _LONE_LABELS:
        return _Facts("label", label=FIELD_OF_KEY[normalise_key(text)])
    words = text.split(None, 2)
    for size in (2, 1):
        # "date 2026-02-27 Title", "Published 25 Feb 2026": a date label without a colon.
        label = normalise_key(" ".join(words[:size]))
        if FIELD_OF_KEY.get(label) in {"published", "updated"} and len(words) > size:
            rest = text.split(None, size)[size]
            rest = re.sub(r"^(?:on|at)\s+", "", rest, flags=re.IGNORECASE)
            found = find_date(rest, context)
            if found is not None and only_filler(rest[: found.start]):
                rank = 2 if FIELD_OF_KEY[label] == "published" else 1
                return _date_facts(rest, rank, context)
    if (byline := _BYLINE_RE.match(text)) and len(text) <= 150 and not text.endswith("."):
        return _date_facts(byline[2] or "", 2, context, kind="byline", titled=False)
    if found := whole_date(text, context):
        return _Facts("date", date=found.date, rank=2)
    segments = _SEGMENT_SPLIT_RE.split(text)
    if len(text) <= 150 and len(segments) >= 2:
        # "Reuters | 25 February 2026 | 3 min read": one segment is the date.
        for index, segment in enumerate(segments):
            if found := whole_date(segment, context):
                updated = index and _UPDATED_BEFORE_RE.search(segments[index - 1])
                return _Facts("date", date=found.date, rank=1 if updated else 2)
    return _Facts("text")


def _label_value(label: str, line: _Line, context: str) -> _Facts | None:
    """The value line of a lone label, or None if the line is not that kind of value."""
    text = line.text
    if len(text) > MAX_HEADER_LINE:
        return None
    if label in {"published", "updated"}:
        found = find_date(text, context)
        if found is None:
            return None
        return _Facts("value", date=found.date, rank=2 if label == "published" else 1)
    if label == "url":
        url = _value_url(text)
        return _Facts("value", url=url) if url else None
    if label == "title":
        return _Facts("value", title=text)
    return _Facts("value", outlet=text) if len(text) <= 100 else None


def _block_facts(block: list[_Line], context: str) -> list[_Facts]:
    """Classify a block's lines; lone labels claim their value lines."""
    facts = [_classify(line, context) for line in block[: _MAX_HEADER_LINES + 1]]
    has_key = any(f.kind == "key" for f in facts)
    folded: tuple[int, str] | None = None  # the key line being continued, and its text so far
    for i, f in enumerate(facts):
        if f.kind == "label":
            value = None
            if i + 1 < len(facts):
                value = _label_value(f.label or "", block[i + 1], context)
            if value is not None:
                facts[i + 1] = value
            else:
                facts[i] = _Facts("text")
        elif f.kind == "otherkey" and not has_key:
            # "Breaking: ferry sinks" is a headline, not a header, unless real keys surround it.
            facts[i] = _Facts("text")
        elif (
            i
            and block[i].raw[:1] in " \t"
            and facts[i - 1].kind in {"key", "otherkey", "cont"}
            and f.kind == "text"
        ):
            # A folded e-mail header line continues the one above it: unfold, read again.
            start, joined = folded if folded and folded[0] < i else (i - 1, block[i - 1].text)
            joined = f"{joined} {block[i].text}"
            folded = (start, joined)
            facts[i] = _Facts("cont")
            if facts[start].kind == "key":
                facts[start] = _classify(_Line(block[start].offset, joined, joined), context)
    return facts


# ---------------------------------------------------------------------------- the header


@dataclass
class _State:
    key_title: str | None = None
    text_title: str | None = None
    date: dt.date | None = None
    rank: int = 0
    url: str | None = None
    outlet: str | None = None
    saw_meta: bool = False
    lines: int = 0

    @property
    def title(self) -> str | None:
        return self.key_title or self.text_title

    def take(self, facts: _Facts) -> None:
        self.saw_meta = True
        if facts.title and not self.key_title:
            self.key_title = facts.title
        if facts.date and facts.rank > self.rank:
            self.date, self.rank = facts.date, facts.rank
        self.url = self.url or facts.url
        self.outlet = self.outlet or facts.outlet

    def take_title(self, line: _Line) -> None:
        if self.text_title is None:
            heading = _HEADING_RE.match(line.text)
            self.text_title = heading[1] if heading else line.text


def _squash(value: str) -> str:
    return " ".join(value.split()).casefold()


def _same_title(line: _Line, hints: tuple[str | None, ...]) -> bool:
    """The line repeats a title known from elsewhere (HTML metadata, a JSON field)."""
    squashed = _squash(_HEADING_RE.sub(r"\1", line.text))
    return any(hint and squashed == _squash(hint) for hint in hints)


def _titleish(line: _Line) -> bool:
    """Could be a headline after the metadata: short, and not a sentence or a lead-in."""
    return len(line.text) <= MAX_HEADER_LINE and not line.text.endswith((".", ":", ","))


def _header_prefix(facts: list[_Facts], block: list[_Line]) -> int:
    """How many of a block's lines belong to the header: up to its last metadata line."""
    last, run = -1, 0
    for i, f in enumerate(facts):
        if f.meta:
            last, run = i, 0
            continue
        run += 1
        if run > _MAX_TEXT_RUN or len(block[i].text) > MAX_HEADER_LINE:
            break
    return last + 1


def parse_header(text: str, *, title_hints: tuple[str | None, ...] = ()) -> Header:
    """Read title, date, outlet and URL from the header lines of article text.

    `title_hints` are titles known from elsewhere (HTML metadata, a JSON field): a line
    at the top that repeats one is header, not body.
    """
    blocks = _blocks(text)
    state = _State()
    body_start: int | None = None
    for index, block in enumerate(blocks[:_MAX_BLOCKS]):
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        facts = _block_facts(block, text)
        size = _header_prefix(facts, block)
        if state.lines + size > _MAX_HEADER_LINES:
            body_start = block[0].offset
            break
        if size == 0:
            taken = _title_block(block, state, following, text, index, title_hints)
            if taken == len(block) and following is not None:
                continue
            body_start = block[taken].offset if taken < len(block) else None
            break
        for line, f in zip(block[:size], facts[:size], strict=True):
            if f.meta:
                state.take(f)
            elif state.title is None or _same_title(line, title_hints):
                state.take_title(line)
        state.lines += size
        rest = block[size:]
        if rest and state.title is None and (
            _same_title(rest[0], title_hints)
            or (len(rest) == 1 and following is not None and _titleish(rest[0]))
        ):
            # "2026-02-25" / "Title" / blank / body: the title may follow the metadata.
            state.take_title(rest[0])
            rest = rest[1:]
        if rest:
            body_start = rest[0].offset
            break
    else:
        # Every block looked at was header: the body is the block after them, if any.
        body_start = blocks[_MAX_BLOCKS][0].offset if len(blocks) > _MAX_BLOCKS else None
    if body_start is None:
        # The "header" is the whole text: its lines are the article, not a headline over it.
        state.text_title = None
        body_start = 0
    if not state.saw_meta and state.title is None:
        body_start = 0
    if body_start >= len(text) or not text[body_start:].strip():
        body_start = 0
    return Header(
        title=state.title,
        published=state.date.isoformat() if state.date else None,
        outlet=state.outlet,
        url=state.url,
        body_start=body_start,
    )


def _title_block(
    block: list[_Line],
    state: _State,
    following: list[_Line] | None,
    text: str,
    index: int,
    hints: tuple[str | None, ...],
) -> int:
    """Lines of a metadata-free block taken as the title (0: the block is body)."""
    if state.title is not None:
        return 0
    first = block[0]
    if _same_title(first, hints) or (index == 0 and _HEADING_RE.match(first.text)):
        state.take_title(first)
        return 1
    if following is None or len(first.text) > MAX_HEADER_LINE:
        return 0
    next_is_meta = _block_facts(following[:2], text)[0].meta
    lines = len(block)
    if (lines == 1 and (next_is_meta or state.saw_meta)) or (
        lines == 2 and next_is_meta and len(block[1].text) <= MAX_HEADER_LINE
    ):
        state.take_title(first)
        return lines
    if lines == 1 and index == 0 and len(first.text) <= _HEADLINE_ALONE and _titleish(first):
        # A short first line alone, then a blank line, reads as a headline; a one-sentence
        # first paragraph ("The ferry sailed.") does not.
        state.take_title(first)
        return 1
    return 0


# ---------------------------------------------------------------------------- front matter

_FRONT_MATTER_RE = re.compile(
    r"(---|\+\+\+)[ \t]*\r?\n(.*?)\r?\n\1[ \t]*(?:\r?\n|$)", re.DOTALL
)


def split_front_matter(text: str) -> tuple[dict[str, str], int]:
    """Front matter ('---' YAML or '+++' TOML key lines) as {field: value}, and where it ends."""
    front = _FRONT_MATTER_RE.match(text)
    if front is None:
        return {}, 0
    separator = ":" if front[1] == "---" else "="
    fields: dict[str, str] = {}
    for line in front[2].splitlines():
        if line[:1] in " \t-#":
            continue  # nested values, list items and comments carry no header field
        key, found, value = line.partition(separator)
        value = value.strip().strip("'\"").strip()
        name = FIELD_OF_KEY.get(normalise_key(key))
        if found and value and name and name not in fields and value[:1] not in "[{":
            fields[name] = value
    return fields, front.end()
