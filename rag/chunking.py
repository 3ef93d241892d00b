"""Sentence-aware, token-bounded chunks with character offsets into the document text."""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from rag.documents import Document

_PARAGRAPH_RE = re.compile(r"[^\n]+(?:\n(?!\s*\n)[^\n]+)*")  # runs of lines without a blank line


@dataclass(frozen=True)
class Chunk:
    """A passage of one document: `text == document.text[start:end]`."""

    chunk_id: str
    source: str
    ordinal: int
    start: int
    end: int
    text: str
    n_tokens: int
    # Sentence spans (document offsets) inside the chunk, used for sentence-level reading.
    sentences: tuple[tuple[int, int], ...] = ()


class TokenCounter(Protocol):
    """Counts word pieces and maps them back to character offsets."""

    def count(self, text: str) -> int:
        """Number of word pieces in `text`, special tokens excluded."""
        ...

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word piece in `text`."""
        ...


class HFTokenCounter:
    """Token counter backed by a `tokenizer.json` (the embedder's own word pieces)."""

    def __init__(self, tokenizer_json: str) -> None:
        from tokenizers import Tokenizer  # light: no torch

        self._tok = Tokenizer.from_file(tokenizer_json)
        self._tok.no_truncation()
        self._tok.no_padding()
        # Whether a word's pieces never depend on the text around it (BERT WordPiece).
        self._word_local = (
            type(self._tok.normalizer).__name__ in ("BertNormalizer", "NoneType")
            and type(self._tok.pre_tokenizer).__name__ == "BertPreTokenizer"
            and type(self._tok.model).__name__ == "WordPiece"
        )

    def count(self, text: str) -> int:
        """Number of word pieces in `text`, special tokens excluded."""
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word piece in `text`."""
        return list(self._tok.encode(text, add_special_tokens=False).offsets)


    def span_counter(self, text: str, start: int) -> Callable[[int, int], int]:
        """`count(text[s:e])` for spans of text[start:], from one pass over that text.

        A chunker counts every sentence and then every chunk it joins them into: one
        `encode` per span tokenised each character twice (a fifth of the time to chunk,
        `rag bench`). With BERT's word pieces a span bounded by whitespace holds exactly
        the pieces it would get alone, since each character is normalised on its own and
        no piece crosses whitespace; other spans, and other tokenizers, are counted alone.
        """
        if not self._word_local:
            return lambda s, e: self.count(text[s:e])
        offsets = self._tok.encode(text[start:], add_special_tokens=False).offsets
        starts = [a + start for a, _ in offsets]
        ends = [b + start for _, b in offsets]
        n = len(text)

        def count(s: int, e: int) -> int:
            if (s == start or text[s - 1] in _SPACES) and (e == n or text[e] in _SPACES):
                return max(0, bisect_right(ends, e) - bisect_left(starts, s))
            return self.count(text[s:e])

        return count


# Whitespace to every tokenizer (unlike "\x1c", which BERT's normaliser deletes).
_SPACES = frozenset(" \t\n\r")


class _CachedRe:
    """The `re` module as pysbd's abbreviation pass sees it, with a compile cache that fits.

    pysbd builds two patterns per abbreviation found in a line (a few hundred distinct
    ones), more than `re`'s 512-entry cache holds, so they were compiled again and again:
    about a third of the whole build's splitting time (cProfile, `rag bench` articles).
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    @lru_cache(maxsize=8192)
    def compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
        """re.compile, remembered."""
        return re.compile(pattern, flags)

    def sub(self, pattern: str, repl: Any, string: str, count: int = 0, flags: int = 0) -> str:
        """re.sub through the cache."""
        return self.compile(pattern, flags).sub(repl, string, count)

    def findall(self, pattern: str, string: str, flags: int = 0) -> list[Any]:
        """re.findall through the cache."""
        return self.compile(pattern, flags).findall(string)

    def search(self, pattern: str, string: str, flags: int = 0) -> re.Match[str] | None:
        """re.search through the cache."""
        return self.compile(pattern, flags).search(string)


def _char_spans(original: str, sentences: list[str]) -> list[str]:
    """pysbd's `sentences_with_char_spans` without a regex per sentence.

    pysbd locates each sentence with a `re.finditer` of the escaped sentence plus trailing
    whitespace, compiling a new pattern for every sentence (another third of the splitting
    time). This finds the same non-overlapping matches with `str.find` and `str.isspace`.
    """
    out: list[str] = []
    prior_end = 0
    n = len(original)
    for sent in sentences:
        if not sent:  # an empty pattern matches everywhere: keep pysbd's own behaviour
            for match in re.finditer(r"\s*", original):
                if match.end() > prior_end:
                    out.append(match.group())
                    prior_end = match.end()
                    break
            continue
        pos = 0
        while (found := original.find(sent, pos)) != -1:
            end = found + len(sent)
            while end < n and original[end].isspace():
                end += 1
            if end > prior_end:
                out.append(original[found:end])
                prior_end = end
                break
            pos = end
    return out


_CACHED_RE = _CachedRe()
# Characters that match an ASCII letter under re.IGNORECASE but do not lower() to it.
_FOLD_ODD = frozenset("ſıİ")


def _search_for_abbreviations(self: Any, text: str) -> str:
    """pysbd's `search_for_abbreviations_in_string`, skipping abbreviations not in `text`.

    pysbd runs a case-insensitive `findall` for every abbreviation whose letters occur
    anywhere in the line (most short ones do, inside other words), then a `re.sub` per
    match: about 40 % of the splitting time. Each of those substitutions only ever
    replaces a "." right after the abbreviation where it follows whitespace or the start,
    so for an abbreviation of letters only, one substring test of " abbr." on the lowered
    text (and of "abbr." per match, in its own case) tells when it would change nothing.
    The others (with a regex "." in them), and texts with characters that fold oddly,
    take pysbd's own path. Same replacements in the same order, so the same output.
    """
    lowered = text.lower()
    exact = len(lowered) == len(text) and not _FOLD_ODD.intersection(text)
    spaced = " " + re.sub(r"\s", " ", lowered) if exact else ""
    for abbr in self.lang.Abbreviation.ABBREVIATIONS:
        stripped = abbr.strip()
        if stripped not in lowered:
            continue
        letters = exact and stripped.isalpha() and stripped.isascii()
        if letters and f" {stripped}." not in spaced:
            continue
        abbrev_match = _CACHED_RE.findall(rf"(?:^|\s|\r|\n){stripped}", text, re.IGNORECASE)
        if not abbrev_match:
            continue
        next_word_start = r"(?<={" + str(re.escape(stripped)) + "} ).{1}"
        char_array = _CACHED_RE.findall(next_word_start, text)
        for ind, match in enumerate(abbrev_match):
            # "." only turns into "∯" here, so a site that is not in the text now never is.
            if letters and match.strip() + "." not in text:
                continue
            text = self.scan_for_replacements(text, match, ind, char_array)
    return text


def _mark_after(text: str, mark: str, before: Callable[[str], bool]) -> bool:
    """Whether some `mark` in `text` follows a character for which `before` holds."""
    i = text.find(mark, 1)
    while i != -1:
        if before(text[i - 1]):
            return True
        i = text.find(mark, i + 1)
    return False


def _ascii_lower(char: str) -> bool:
    return "a" <= char <= "z"


def _list_needs() -> dict[str, tuple[str, Callable[[str], bool]]]:
    """What each of pysbd's list-item patterns needs in a text to match at all.

    Every alternative of these patterns ends in a digit or an a-z letter right before
    "." or ")"; a text without one cannot match, and pysbd then changes nothing. The
    four `findall`s scanned every paragraph for lists news rarely has: about a third of
    pysbd's time once the abbreviation pass was fast (`rag bench` articles).
    """
    from pysbd.lists_item_replacer import ListItemReplacer as L

    return {
        L.NUMBERED_LIST_REGEX_1: (".", str.isdigit),  # isdigit: a superset of \d
        L.NUMBERED_LIST_PARENS_REGEX: (")", str.isdigit),
        L.ALPHABETICAL_LIST_WITH_PERIODS: (".", _ascii_lower),
        L.ALPHABETICAL_LIST_WITH_PARENS: (")", _ascii_lower),
    }


def _patch_list_items() -> None:
    """Let pysbd's list scans return at once on a text their patterns cannot match."""
    from pysbd.lists_item_replacer import ListItemReplacer

    needs = _list_needs()
    scan, iterate = ListItemReplacer.scan_lists, ListItemReplacer.iterate_alphabet_array

    def scan_lists(self: Any, regex1: str, regex2: str, replacement: str,
                   strip: bool = False) -> None:
        need = needs.get(regex1)
        if need is None or _mark_after(self.text, *need):
            scan(self, regex1, regex2, replacement, strip)

    def iterate_alphabet_array(self: Any, regex: str, parens: bool = False,
                               roman_numeral: bool = False) -> str:
        need = needs.get(regex)
        if need is None or _mark_after(self.text, *need):
            return str(iterate(self, regex, parens, roman_numeral))
        return str(self.text)

    ListItemReplacer.pysbd_scan_lists = scan
    ListItemReplacer.pysbd_iterate_alphabet_array = iterate
    ListItemReplacer.scan_lists = scan_lists
    ListItemReplacer.iterate_alphabet_array = iterate_alphabet_array


@lru_cache(maxsize=1)
def _segmenter() -> Callable[[str], list[str]]:
    import pysbd
    import pysbd.abbreviation_replacer

    # Only pysbd's own module sees the cached `re`; the output is unchanged (tests compare).
    pysbd.abbreviation_replacer.re = _CACHED_RE
    replacer = pysbd.abbreviation_replacer.AbbreviationReplacer
    replacer.pysbd_search_for_abbreviations = replacer.search_for_abbreviations_in_string
    replacer.search_for_abbreviations_in_string = _search_for_abbreviations
    _patch_list_items()
    seg = pysbd.Segmenter(language="en", clean=False, char_span=False)

    def segment(text: str) -> list[str]:
        if not text:
            return []
        seg.original_text = text
        return _char_spans(text, seg.processor(text).process())

    return segment


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of text[start:end], whitespace trimmed, in document offsets.

    Paragraphs (separated by blank lines) are split first, so a headline or caption never
    merges with the next paragraph; pysbd then splits each paragraph into sentences. Its
    output is re-located in the text with `find`, so offsets are exact even where pysbd
    normalises whitespace.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    segment = _segmenter()
    for para in _PARAGRAPH_RE.finditer(text, start, end):
        cursor = para.start()
        for sentence in segment(para.group()):
            piece = sentence.strip()
            if not piece:
                continue
            found = text.find(piece, cursor, para.end())
            if found == -1:  # pysbd altered the text: the rest of the paragraph is one span
                break
            s, e = found, found + len(piece)
            skipped = text[cursor:found]
            if skipped.strip():
                # pysbd dropped characters (e.g. "!?" after an abbreviation): keep them, with
                # the sentence before when this paragraph has one, else with this one.
                if cursor > para.start():
                    spans[-1] = (spans[-1][0], cursor + len(skipped.rstrip()))
                else:
                    s = cursor + len(skipped) - len(skipped.lstrip())
            spans.append((s, e))
            cursor = e
        tail = text[cursor : para.end()]
        if tail.strip():
            lead = len(tail) - len(tail.lstrip())
            spans.append((cursor + lead, cursor + len(tail.rstrip())))
        # A bracketed piece after a sentence belongs to it: a caption's photo credit
        # "(ANDY CHONG/CHINA DAILY)", a source "(Reuters)". (Not a new "splitter" in the
        # index config: an index built before keeps its spans, and search stays valid.)
        first = next((i for i, (s, _) in enumerate(spans) if s >= para.start()), len(spans))
        for i in range(len(spans) - 1, first, -1):
            s, e = spans[i]
            if _BRACKETED.fullmatch(text, s, e):
                spans[i - 1] = (spans[i - 1][0], e)
                del spans[i]
    return spans


_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


def split_lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans (start, end) of the non-blank lines of text[start:end], whitespace trimmed."""
    spans = []
    for line in _LINE.finditer(text, start, end):
        piece = line.group()
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((line.start() + lead, line.start() + len(piece.rstrip())))
    return spans


_LINE = re.compile(r"[^\n]+")


def _chunk_id(source: str, start: int, text: str) -> str:
    return hashlib.sha256(f"{source}\0{start}\0{text}".encode()).hexdigest()[:24]


class Chunker:
    """Packs whole sentences into chunks of at most `max_tokens` word pieces, with overlap."""

    def __init__(self, counter: TokenCounter, max_tokens: int = 180, overlap_tokens: int = 40):
        if max_tokens < 16:
            raise ValueError(f"max_tokens must be >= 16, got {max_tokens}")
        if not 0 <= overlap_tokens < max_tokens:
            raise ValueError(
                f"overlap_tokens ({overlap_tokens}) must be >= 0 and smaller than "
                f"max_tokens ({max_tokens})"
            )
        self.counter = counter
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    @property
    def params(self) -> dict[str, object]:
        """The parameters that decide chunk boundaries (recorded in the manifest)."""
        return {
            # Not bumped when the header began to be chunked (2026-12-08): an index built
            # before keeps its chunks and its search stays valid, while a new "splitter"
            # would refuse it until `rag index build`, which drops articles that are not in
            # the folder it builds from. Its articles get header chunks when they change, or
            # when the index is built afresh.
            "splitter": "pysbd-0.3.4+paragraphs",
            "max_tokens": self.max_tokens,
            "overlap_tokens": self.overlap_tokens,
        }

    def _split_long(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """Cut one over-long sentence at word-piece boundaries (the only mid-sentence cut)."""
        offsets = self.counter.offsets(text[start:end])
        pieces: list[tuple[int, int, int]] = []
        step = self.max_tokens - self.overlap_tokens
        i = 0
        while i < len(offsets):
            j = min(i + self.max_tokens, len(offsets))
            # Back off to a word start so no word is split between pieces; a window with no
            # word start at all (a run without spaces) is cut where it is.
            k = j
            while k < len(offsets) and k > i + 1 and offsets[k][0] == offsets[k - 1][1]:
                k -= 1
            if k >= len(offsets) or offsets[k][0] != offsets[k - 1][1]:
                j = k
            s = start + offsets[i][0]
            # A piece that starts or ends inside a word can tokenize into more pieces on its
            # own than it had in context: shrink it until its own count fits.
            n = self.counter.count(text[s : start + offsets[j - 1][1]])
            while n > self.max_tokens and j > i + 1:
                j -= 1
                n = self.counter.count(text[s : start + offsets[j - 1][1]])
            pieces.append((s, start + offsets[j - 1][1], n))
            if j >= len(offsets):
                break
            nxt = max(i + 1, j - self.overlap_tokens if j - i > step else j)
            while nxt < j and nxt > i + 1 and offsets[nxt][0] == offsets[nxt - 1][1]:
                nxt -= 1
            i = nxt
        return pieces

    def _fit(
        self, count: Callable[[int, int], int], group: Sequence[tuple[int, int, int]]
    ) -> list[tuple[Sequence[tuple[int, int, int]], int]]:
        """(group, token count) pieces of a group, halved until each fits `max_tokens`.

        Token counts of joined units are not always the sum of their own counts (word
        pieces can merge or split across a join without a space), so the joined text is
        counted again; a rare overflow splits the group rather than break the bound.
        """
        n = count(group[0][0], group[-1][1])
        if n <= self.max_tokens or len(group) == 1:
            return [(group, n)]
        mid = len(group) // 2
        return self._fit(count, group[:mid]) + self._fit(count, group[mid:])

    def chunk(self, doc: Document) -> list[Chunk]:
        """Split a document (header lines, then body sentences) into chunks; chunk text is an
        exact slice of the document."""
        units: list[tuple[int, int, int]] = []  # (start, end, n_tokens)
        spans = getattr(self.counter, "span_counter", None)
        count = (spans(doc.text, 0) if spans is not None
                 else lambda s, e: self.counter.count(doc.text[s:e]))
        # The header is chunked too, one unit per line (its lines are fields, not prose),
        # never merged with the body's first sentence: a headline often states the story's
        # main fact, and the outlet, byline and date lines are what "who published it" or
        # "when was it published" is answered from.
        for s, e in [*split_lines(doc.text, 0, doc.body_start),
                     *split_sentences(doc.text, doc.body_start)]:
            n = count(s, e)
            if n > self.max_tokens:
                units.extend(self._split_long(doc.text, s, e))
            else:
                units.append((s, e, n))
        groups: list[Sequence[tuple[int, int, int]]] = []
        current: list[tuple[int, int, int]] = []
        total = 0
        for unit in units:
            if current and total + unit[2] > self.max_tokens:
                groups.append(current)
                # Carry trailing whole sentences forward as overlap, never the whole chunk.
                carried: list[tuple[int, int, int]] = []
                budget = self.overlap_tokens
                for prev in reversed(current[1:]):
                    if prev[2] > budget or total - prev[2] <= 0:
                        break
                    carried.insert(0, prev)
                    budget -= prev[2]
                while carried and sum(u[2] for u in carried) + unit[2] > self.max_tokens:
                    carried.pop(0)
                current, total = carried, sum(u[2] for u in carried)
            current.append(unit)
            total += unit[2]
        if current:
            groups.append(current)
        chunks = []
        fitted = [piece for group in groups for piece in self._fit(count, group)]
        for ordinal, (group, n_tokens) in enumerate(fitted):
            start, end = group[0][0], group[-1][1]
            text = doc.text[start:end]
            chunks.append(
                Chunk(
                    chunk_id=_chunk_id(doc.source, start, text),
                    source=doc.source,
                    ordinal=ordinal,
                    start=start,
                    end=end,
                    text=text,
                    n_tokens=n_tokens,
                    sentences=tuple((u[0], u[1]) for u in group),
                )
            )
        return chunks
