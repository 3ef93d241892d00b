"""An HTML page's own metadata: title, publication date, canonical URL and site name.

Read from the tags publishers put in `<head>` for search engines and social cards
(`og:*`, `article:published_time`, JSON-LD `NewsArticle`, `<link rel=canonical>`,
`<title>`), with the standard library's HTML parser. Only these fields count: a date
that merely appears in the article text is not the article's date.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

# Best first. JSON-LD and Open Graph are what publishers maintain; the rest are older habits.
_DATE_NAMES = (
    "ld:datepublished", "article:published_time", "og:published_time", "datepublished",
    "article.published", "pubdate", "publishdate", "publish-date", "publish_date",
    "parsely-pub-date", "sailthru.date", "dc.date.issued", "dcterms.issued", "dc.date",
    "dcterms.date", "dcterms.created", "date", "original-publish-date", "time:pubdate",
)
# Used only when a page gives no publication date: the date it was last changed.
_UPDATED_NAMES = ("ld:datemodified", "article:modified_time", "og:updated_time", "datemodified")
_TITLE_NAMES = ("og:title", "ld:headline", "twitter:title", "dc.title", "title")
_URL_NAMES = ("canonical", "og:url", "ld:url")
_OUTLET_NAMES = ("og:site_name", "ld:publisher", "application-name")
_ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle",
    "opinionnewsarticle", "backgroundnewsarticle", "blogposting", "liveblogposting",
    "report", "scholarlyarticle", "techarticle",
}
_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ")


@dataclass(frozen=True)
class HtmlMeta:
    """Metadata a page declares; `published` is the raw value, not yet read as a date."""

    title: str | None = None
    published: str | None = None
    url: str | None = None
    outlet: str | None = None
    page_title: str | None = None  # <title>: often "Headline | Site", so the last resort


class _MetaParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, str] = {}
        self.json_ld: list[str] = []
        self._capture: str | None = None  # "title" or "ld" while inside that element
        self._buffer: list[str] = []

    def _keep(self, name: str, value: str | None) -> None:
        if name and value and value.strip():
            self.found.setdefault(name, " ".join(value.split()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        if tag == "meta":
            for attr in ("property", "name", "itemprop"):
                self._keep(a.get(attr, "").strip().lower(), a.get("content"))
        elif tag == "link" and "canonical" in a.get("rel", "").lower().split():
            self._keep("canonical", a.get("href"))
        elif tag == "time" and a.get("datetime") and (
            "pubdate" in a or a.get("itemprop", "").lower() == "datepublished"
        ):
            self._keep("time:pubdate", a["datetime"])
        elif tag == "script" and a.get("type", "").strip().lower() == "application/ld+json":
            self._capture, self._buffer = "ld", []
        elif tag == "title" and "html:title" not in self.found:
            self._capture, self._buffer = "title", []

    def handle_endtag(self, tag: str) -> None:
        if self._capture == "ld" and tag == "script":
            self.json_ld.append("".join(self._buffer))
            self._capture = None
        elif self._capture == "title" and tag == "title":
            self._keep("html:title", "".join(self._buffer))
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture:
            self._buffer.append(data)


def _ld_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON-LD document, including those inside `@graph` lists."""
    stack = [node]  # a loop, not recursion: a page may nest lists hundreds deep
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            yield item
            stack.append(item.get("@graph"))


def _is_article(obj: dict[str, Any]) -> bool:
    kinds = obj.get("@type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(k, str) and k.lower() in _ARTICLE_TYPES for k in kinds)


def _text(value: Any) -> str | None:
    """A JSON-LD value as text: a string, or the name/@id of an object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("@id") or value.get("url"))
    if isinstance(value, list) and value:
        return _text(value[0])
    return None


def _read_json_ld(parser: _MetaParser) -> None:
    for blob in parser.json_ld:
        try:
            data = json.loads(blob)
        except (ValueError, RecursionError):
            continue  # hand-written JSON-LD is often broken; the other tags remain
        articles = [o for o in _ld_objects(data) if _is_article(o)]
        for obj in articles[:1]:
            parser._keep("ld:datepublished", _text(obj.get("datePublished")))
            parser._keep("ld:datemodified", _text(obj.get("dateModified")))
            parser._keep("ld:headline", _text(obj.get("headline") or obj.get("name")))
            parser._keep("ld:url", _text(obj.get("url") or obj.get("mainEntityOfPage")))
            parser._keep("ld:publisher", _text(obj.get("publisher")))


def _first(found: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((found[n] for n in names if found.get(n)), None)


def _strip_site(title: str, outlet: str | None) -> str:
    """'Harbour ferry sets record | Daily Port' → 'Harbour ferry sets record'."""
    if outlet:
        for sep in _TITLE_SEPARATORS:
            head, _, tail = title.rpartition(sep)
            if head and tail.strip().casefold() == outlet.casefold():
                return head.strip()
    return title


def html_metadata(html: str) -> HtmlMeta:
    """The title, date, URL and site name a page declares in its markup."""
    parser = _MetaParser()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):
        pass  # a malformed tail: keep what was read before it
    _read_json_ld(parser)
    found = parser.found
    outlet = _first(found, _OUTLET_NAMES)
    title = _first(found, _TITLE_NAMES)
    page_title = found.get("html:title")
    url = _first(found, _URL_NAMES)
    return HtmlMeta(
        title=_strip_site(title, outlet) if title else None,
        published=_first(found, _DATE_NAMES) or _first(found, _UPDATED_NAMES),
        url=url if url and url.startswith(("http://", "https://")) else None,
        outlet=outlet,
        page_title=_strip_site(page_title, outlet) if page_title else None,
    )
