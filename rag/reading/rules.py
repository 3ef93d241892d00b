"""Readers: turn retrieved passages into short answer spans that are really in the text.

`ExtractiveReader` needs no generative model: it ranks the sentences of the retrieved
chunks (sentence vectors pooled at index time + idf-weighted word overlap), then picks
the span whose type fits the question (amount, date, person, place, ...) nearest to the
question's words. `GenerativeReader` (rag/reading/generative.py) asks SmolLM2 and maps its words
back onto a verbatim span.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from rag.answer import Reading
from rag.backends.base import SearchIndex
from rag.reading.question import (
    COUNT,
    CURRENCIES,
    DATE,
    DOCUMENT_HEADS,
    DURATION,
    GENERIC_ORG_HEADS,
    MONEY,
    NAME,
    NAME_RUN,
    ORG,
    ORG_HEADS,
    ORG_SORTS,
    PERCENT,
    PERSON,
    PHRASE,
    PLACE,
    PLACE_AS_ORG_HEADS,
    PLACE_HEADS,
    QUANTITY,
    REASON,
    SCHEME_HEADS,
    TITLE_WORDS,
    QuestionInfo,
    analyse,
)
from rag.reading.sentences import ScoredSentence, SentenceRanker
from rag.reading.spans import (
    CREDIT,
    QUOTED_LIST,
    Candidate,
    candidates,
    lemmas,
    parse_question,
    prepare,
)
from rag.retrieval import Hit
from rag.sparse import words

QueryEncoder = Callable[[str], np.ndarray]
# A plain phrase's fit to a who-question: eval/dev gains at 0.5, not at 0.3-0.4.
_WHO_PHRASE = 0.5
_NAMES = frozenset({PERSON, ORG, PLACE, NAME})
_AMOUNTS = frozenset({MONEY, PERCENT, QUANTITY, COUNT, DURATION, DATE})

# Words that start a purpose clause: the answer to a "why" question usually follows them.
_PURPOSE = re.compile(
    r"\b(?:in a bid to|in order to|so as to|so that|with the aim of|aim(?:s|ed|ing)? to|"
    r"aim(?:s|ed|ing)? at|seek(?:s|ing)? to|intended to|designed to|because(?: of)?|"
    r"due to|thanks to|given that|since|to help|to)\s+",
    re.IGNORECASE,
)
# A phrase that goes on: a name continued by "for" and a capitalised word ("Secretary [for
# Innovation ...]"), or a noun whose "of" completes it ("the creation [of a reading room]").
_NAME_GOES_ON = re.compile(r"\s+of\s|\s+for\s+(?:the\s+)?[A-Z]")
_LIST_SEP = re.compile(r",\s*(?:and |or )?|\s(?:and|or)\s")
_MONTH = (r"january|february|march|april|may|june|july|august|september|october|november|"
          r"december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec")
# What each part of a date looks like when a span states it.
_DATE_PART_SHAPES = {
    "month": re.compile(rf"\b(?:{_MONTH})\b\.?|\b(?:last|this|next) month\b", re.IGNORECASE),
    "year": re.compile(r"\b(?:1[89]|20|21)\d{2}\b|\b(?:last|this|next) year\b", re.IGNORECASE),
    "day": re.compile(rf"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|\b(?:{_MONTH})\.? \d{{1,2}}"
                      r"(?:st|nd|rd|th)?\b|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:" + _MONTH
                      + r")\b|\b(?:yesterday|today|tomorrow)\b", re.IGNORECASE),
}
_BARE_DOLLAR = re.compile(r"(?<![A-Za-z])\$")


def _other_kind_of_name(info: QuestionInfo, cand: Candidate) -> bool:
    """Whether a name is surely not the asked-for kind of thing, whatever the tagger said: a
    place ("Hong Kong SAR") for "which legislator / company / university ...?", a name
    ending in an organisation noun ("Legislative Council") for "which legislator ...?", or
    in another sort of organisation's or a place's ("... Bureau", "... City") for "which
    company ...?", or a document ("the Conceptual Outline of ...") for a person or an
    organisation. "Who" may still mean a government."""
    tokens = words(cand.text)
    if not tokens:
        return False
    # A name's head noun is its last word before any "of": the [Ministry] of Industry and
    # Information Technology, the Conceptual [Outline] of the Development Plan.
    of = next((i for i, w in enumerate(tokens) if cand.text[w[0] : w[1]].lower() == "of"),
              len(tokens))
    last = tokens[max(of - 1, 0)][2]
    if last in DOCUMENT_HEADS and info.types[0] in (PERSON, ORG):
        return True  # a document is neither who did it nor the company asked for
    if info.wh in ("who", "whom", "whose") or PERSON in cand.kinds:
        return False
    if info.types[0] == PERSON and last in ORG_HEADS:
        return True
    asked = next((sort for sort in ORG_SORTS if info.head in sort), None)
    if ORG in info.types and asked is not None and last not in asked and (
            last in PLACE_HEADS or any(last in sort for sort in ORG_SORTS)):
        # "which company ...?" → not "the Innovation and Technology Bureau", nor "the New
        # Tian Science and Technology City"
        return True
    if cand.kinds & _NAMES != {PLACE}:
        return False
    return info.types[0] == PERSON or (info.types[0] == ORG and info.head is not None
                                       and info.head not in PLACE_AS_ORG_HEADS)


# "Who is Kenny Shui?": a question about who someone is, which a post answers.
_IDENTITY = re.compile(r"\s*(?i:who (?:is|was|are|were) (?:mr\.? |ms\.? |dr\.? |professor )?)[A-Z]")
# The capitalised words right after a span: "[2026-27] Budget released on Wednesday".
_NAMED_BY_DATE = re.compile(r"(?:\s+(?:of\s+|and\s+)?[A-Z][\w'-]*)+")


# The post said beside a name: "Kenny Shui, [vice-president of think tank ...]," or
# "[Financial Secretary] Paul Chan".
_POST_AFTER = re.compile(r"\s*,\s*([^,;]+)")
_POST_BEFORE = re.compile(r"((?:[A-Z][\w-]*\s+){1,5})$")


# Posts that head what they are posts of ("Who heads Lingnan University?" → its president).
_HEAD_POSTS = frozenset(
    "head president chairman chairwoman chair chairperson chief director leader principal dean "
    "governor mayor ceo secretary minister commissioner premier superintendent".split())
_UNDER = frozenset("vice deputy assistant associate".split())


def _holds_another_post(info: QuestionInfo, sentence: str, start: int, end: int) -> bool:
    """Whether the sentence gives the person at [start, end) a post other than the one the
    question asks about: "Who chairs the foundation?" is not answered by "Kenny Shui,
    vice-president of think tank Our Hong Kong Foundation", nor "who heads the institute?"
    by the head of another one. A person with no post said may still be it."""
    posts = []
    if (m := _POST_AFTER.match(sentence[end:])) and _is_title(m[1]):
        posts.append(m[1])
    if (m := _POST_BEFORE.search(sentence[:start])) and any(
            w.lower() in TITLE_WORDS for w in m[1].split()):
        posts.append(m[1])
    if not posts:
        return False
    # "vice-president of A and executive director of its B": two posts, each of its own.
    pieces: list[str] = []
    for post in posts:
        for piece in re.split(r"\s+and\s+", post):
            if pieces and not _is_title(piece):
                pieces[-1] += " and " + piece  # "... of Industry and Information Technology"
            else:
                pieces.append(piece)
    runs = [m[0].lower().removeprefix("the ") for m in NAME_RUN.finditer(info.text)
            if m.start() > 0 or " " in m[0]]
    return not any(_is_post(info, piece, runs) for piece in pieces)


def _is_post(info: QuestionInfo, post: str, runs: Sequence[str]) -> bool:
    """Whether a post is the one a who-question asks about, of the organisation it names."""
    said = [w.lower() for w in _WORD.findall(post)]
    if info.role in (("head",), ("lead",)):
        # Whoever holds a top post heads or leads; a vice-president does not.
        held = any(w in _HEAD_POSTS and (i == 0 or said[i - 1] not in _UNDER)
                   for i, w in enumerate(said))
    else:
        held = all(any(w.startswith(r) for w in said) for r in info.role)
    return held and (not runs or any(r in post.lower() for r in runs))


def _dates_a_name(info: QuestionInfo, after: str) -> bool:
    """Whether a date is part of a name the question does not say ("the [2026-27] Budget",
    "the [2024] Olympics"): it tells which budget, not when the asked-about thing happens.
    A month or weekday after it continues the date ("2024 September"), not a name."""
    m = _NAMED_BY_DATE.match(after)
    if m is None or _DATE_PART_SHAPES["month"].match(m[0].strip()) or _DATE_PART_SHAPES[
            "day"].match(m[0].strip()):
        return False
    stems = {w[2] for w in words(m[0]) if not w[3]}
    return bool(stems) and not stems & set(info.terms)


def _states_date_parts(text: str, parts: frozenset[str]) -> bool:
    """Whether a date span states every asked-for part ("September 2024": month and year)."""
    return all(_DATE_PART_SHAPES[p].search(text) for p in parts)


def _currency(text: str) -> str | None:
    """The currency of the first amount in `text`: a code, "$" when only a bare dollar sign
    says it (US or Hong Kong dollars, as the article's convention has it), else None."""
    lowered = text.lower()
    found = [(m.start(), code) for code, pattern in CURRENCIES.items()
             if (m := pattern.search(lowered))]
    if m := _BARE_DOLLAR.search(text):
        found.append((m.start(), "$"))
    return min(found)[1] if found else None


def _quoted(text: str, cand: Candidate) -> bool:
    """Whether the span is all of one quotation ('"One River, Two Banks"'): a name, even
    with a comma in it."""
    if cand.start == 0 or cand.end >= len(text):
        return False
    return (text[cand.start - 1] in "\"“'‘" and text[cand.end] in "\"”'’"
            and not any(q in cand.text for q in "\"“”"))


def _proper(text: str) -> bool:
    """Whether a phrase is a proper name by its capitals: every content word capitalised, a
    determiner aside ("The He Tao Hong Kong Park")."""
    content = [w for w in words(text) if not w[3]]
    return len(content) >= 2 and all(text[w[0]].isupper() for w in content)


_NAME_BEFORE = re.compile(r"([A-Z][\w-]*)\s*,\s*$")
_NAME_AFTER = re.compile(r"^\s*,\s*(?:[A-Z][\w-]*\s+)*?([A-Z][\w-]*)\s*[,.]")


def _appositive_of(sentence: str, start: int, end: int, terms: set[str]) -> bool:
    """Whether the span is set off by a comma beside a capitalised name whose words the
    question uses ("Professor Sun Dong, [the Secretary for ...]")."""
    for m in (_NAME_BEFORE.search(sentence[:start]), _NAME_AFTER.match(sentence[end:])):
        if m is not None and any(w[2] in terms for w in words(m[1])):
            return True
    return False


def _named(info: QuestionInfo, sent: ScoredSentence) -> float:
    """Share of the question's name words its sentence says: 1.0 when the question names
    nothing. "How many hectares does New Tian cover?" read from a sentence about Sha Ling
    scores low, whatever figure it holds. (Weighting the words by idf measured the same on
    the rotation and on eval/dev.)"""
    if not info.names:
        return 1.0
    # The sentence and the words before it in the passage: a name said just before
    # ("New Tian ... Hong Kong will invite private developers") is still in view.
    text = sent.hit.text[max(0, sent.start - sent.hit.start - 200) : sent.end - sent.hit.start]
    said = {w[2] for w in words(text)}
    # "SAR" is said as "Special Administrative Region" as often as not.
    for m in NAME_RUN.finditer(text):
        initials = "".join(w[0].lower() for w in m[0].split() if w[0].isupper())
        said.update(initials[i:j] for i in range(len(initials))
                    for j in range(i + 2, len(initials) + 1))
    # ... and the other way round: "Hong Kong" is said by "HKSAR", "Ministry of Industry and
    # Information Technology" by "MIIT" (initials of two or more of the question's name
    # words in a row, inside an all-capitals word).
    acronyms = [w.lower() for w in re.findall(r"\b[A-Z]{2,}\b", text)]
    names = info.names
    for i in range(len(names)):
        for j in range(i + 2, len(names) + 1):
            if any("".join(n[0] for n in names[i:j]) in a for a in acronyms):
                said.update(names[i:j])
    return sum(1 for t in names if t in said) / len(names)



def _list_of(info: QuestionInfo, span: Candidate, others: Sequence[Candidate]) -> bool:
    """Whether a list span lists two or more things of the asked-for kind (any names for a
    name question) and little else: "The He Tao Hong Kong Park and the New Tian ... City",
    not "the advantages of cooperation between Hong Kong and Shenzhen"."""
    kind = info.types[0]
    items = [o for o in others if o != span and span.start <= o.start and o.end <= span.end
             and (kind in o.kinds or kind in _NAMES and (o.kinds & _NAMES or _proper(o.text)))]
    covered: set[int] = set()
    for o in items:
        covered.update(range(o.start, o.end))
    return len(items) >= 2 and len(covered) >= 0.6 * (span.end - span.start)


def _list_items(span: Candidate, others: Sequence[Candidate]) -> int:
    """How many items a span lists: parts joined by commas and and/or, not counting those
    inside a name it holds ("the New Tian Science and Technology City" is one item; "He Tao
    Park and the New Tian Science and Technology City" two; two quoted names two)."""
    names = [(o.start - span.start, o.end - span.start) for o in others
             if o.kinds & _NAMES and span.start <= o.start and o.end <= span.end
             and not QUOTED_LIST.fullmatch(o.text)]
    return 1 + sum(1 for m in _LIST_SEP.finditer(span.text)
                   if not any(a <= m.start() and m.end() <= b for a, b in names))


_BOUNDARY = re.compile(r"[,;:.!?—–()\"“”]|\s(?:which|while|whereas|but|who)\s")


class ExtractiveReader:
    """Sentence ranking + answer-type-aware span selection; no model (`--reader rules`)."""

    name = "rules"

    def __init__(self, index: SearchIndex, encode: QueryEncoder, *, read_hits: int = 5,
                 sentences: int = 4) -> None:
        self.index = index
        self.encode = encode
        self.read_hits = read_hits
        self.sentences = sentences

    # ------------------------------------------------------------------ sentences

    def rank_sentences(self, question: str, hits: Sequence[Hit]) -> list[ScoredSentence]:
        """Sentences of the top hits' bodies, best first (rag.reading.sentences).

        The rules were written for prose: a header's lines (a "date" label, an outlet, a
        headline without a verb) are searched and cited, but these rules do not read them.
        """
        ranked = SentenceRanker(self.index, self.encode, self.read_hits).rank(question, hits)
        return [s for s in ranked if s.start >= s.hit.body_start]

    # ------------------------------------------------------------------ spans

    def read(self, question: str, hits: Sequence[Hit]) -> list[Reading]:
        """Candidate answers, best first, each a verbatim span of a retrieved chunk."""
        info = analyse(question)
        ranked = self.rank_sentences(question, hits)
        if not ranked:
            return []
        best_sentence = ranked[0]
        idf = self.index.idf(info.terms)
        # How much of the question the top passages mention at all: an off-topic question
        # or one about an unmentioned thing leaves its rarest words unmatched.
        passage_stems = {w[2] for h in hits[:2] for w in words(h.text)}
        coverage = sum(v for t, v in idf.items() if t in passage_stems) / (
            sum(idf.values()) or 1.0
        )
        # One spaCy batch for the sentences read, instead of one call each.
        prepare([s.hit.text[s.start - s.hit.start : s.end - s.hit.start]
                 for s in ranked[: self.sentences]])
        readings: list[Reading] = []
        for position, sent in enumerate(ranked[: self.sentences]):
            named = _named(info, sent)
            for cand, kind_score in self._candidates(info, sent):
                span_score, novelty, proximity, governed = self._score_span(info, sent, cand, idf)
                if span_score <= 0:
                    continue
                # Sentence relevance leads: the right sentence with a weaker span beats a
                # perfect-looking span in a sentence about something else.
                score = (
                    0.40 * max(sent.score, 0.0) / max(best_sentence.score, 1e-6)
                    + 0.30 * kind_score
                    + 0.30 * span_score
                    - 0.03 * position
                    # Among equals the earlier mention is the main fact ("HK$220 million
                    # ($28.1 million)"): a tiny tie-break by position in the sentence.
                    - 0.02 * (cand.start - sent.start) / max(sent.end - sent.start, 1)
                )
                readings.append(
                    Reading(
                        text=cand.text,
                        source=sent.hit.source,
                        start=cand.start,
                        end=cand.end,
                        score=float(score),
                        hit=sent.hit,
                        sentence=(sent.start, sent.end),
                        features={
                            "score": float(score),
                            "sem": sent.sem,
                            "lex": sent.lex,
                            "sem_best": best_sentence.sem,
                            "lex_best": best_sentence.lex,
                            "kind": kind_score,
                            "novelty": novelty,
                            "proximity": proximity,
                            "governed": governed,
                            "typed": 1.0 if info.typed else 0.0,
                            "coverage": coverage,
                            "named": named,
                            "dense_top": hits[0].dense_score or 0.0 if hits else 0.0,
                        },
                    )
                )
        readings.sort(key=lambda r: -r.score)
        unique: list[Reading] = []
        texts: set[str] = set()
        for r in readings:
            key = r.text.lower()
            if key not in texts:
                texts.add(key)
                unique.append(r)
        if len(unique) > 1:
            margin = unique[0].score - unique[1].score
            unique[0] = with_feature(unique[0], "margin", margin)
        elif unique:
            unique[0] = with_feature(unique[0], "margin", unique[0].score)
        return unique[:10]

    def _candidates(
        self, info: QuestionInfo, sent: ScoredSentence
    ) -> list[tuple[Candidate, float]]:
        """Spans of the sentence with how well their kind fits the question (0..1)."""
        hit = sent.hit
        rel_start, rel_end = sent.start - hit.start, sent.end - hit.start
        out: list[tuple[Candidate, float]] = []
        sentence = hit.text[rel_start:rel_end]
        spans = candidates(hit.text, rel_start, rel_end)
        for c in spans:
            cand = c.shifted(hit.start)
            proper, led = _naming(info, cand.text)
            quoted = _quoted(hit.text, c)
            items = _list_items(c, spans) if info.several > 0 and not quoted else 1
            listed = items >= 2
            # A quoted name ("'one country, two systems'") is a phrase too.
            phrase = info.types[0] == PHRASE and quoted
            if info.types[0] in _NAMES and cand.kinds & _NAMES and _other_kind_of_name(
                    info, cand):
                continue
            if info.wh in ("who", "whom") and not info.post and not _IDENTITY.match(
                    info.text) and _is_title(cand.text):
                # "Who chairs the foundation?" asks for someone, not for a post ("executive
                # director of its Public Policy Institute"); "Who is Kenny Shui?" may be
                # answered by one.
                continue
            if info.types[0] in cand.kinds or phrase or listed and _list_of(info, c, spans):
                kind = 1.0  # the asked-for kind, or a list of two or more of them
            elif any(t in cand.kinds for t in info.types[1:]):
                kind = 0.8
            elif info.types[0] in _NAMES and cand.kinds & _NAMES:
                # The small NER model confuses places, people and organisations
                # ("Yuen Long InnoPark" as a person): a proper name still half-fits.
                kind = 0.6
            elif not info.typed and PHRASE in cand.kinds:
                kind = 0.5
            elif not info.typed and cand.kinds:
                kind = 0.4
            elif listed:
                kind = 0.6  # "which two places?": a list of places, whatever its tags
            elif led:
                kind = 1.0  # an untagged name of the asked-for thing; boosted below
            elif _lower_case_scheme(info, cand):
                kind = 1.0  # "which programme ...?" → "the elite enterprises nurturing scheme"
            elif info.wh == "who" and PHRASE in cand.kinds:
                # "Who will the company invite?" → "private developers": a group named by a
                # common noun answers a who-question too, below a name; the agent of a
                # passive or an action noun ("accreditation [by] central government
                # authorities") fits better.
                kind = 0.8 if cand.preposition == "by" else _WHO_PHRASE
            else:
                continue
            if not info.typed and cand.kinds & _AMOUNTS and not cand.kinds & _NAMES:
                # A free-form question ("what will the land be used for?") would have been
                # typed had it asked for an amount or a date: such spans fit it less.
                kind *= 0.6
            if info.qualifiers and cand.kinds & _AMOUNTS and not all(
                    said.search(sentence) for said in info.qualifiers):
                kind *= 0.5  # "the total spending" is not an amount the sentence never totals
            if info.credit and PERSON in cand.kinds:
                # The photographer is named in the credit; a person elsewhere is in the photo.
                kind = kind + 0.3 if any(m.span(1) == (c.start - rel_start, c.end - rel_start)
                                         for m in CREDIT.finditer(sentence)) else kind * 0.5
            if info.role and PERSON in cand.kinds and _holds_another_post(
                    info, sentence, c.start - rel_start, c.end - rel_start):
                kind *= 0.5
            if info.types[0] == DATE and DATE in cand.kinds and _dates_a_name(
                    info, sentence[c.end - rel_start :]):
                kind *= 0.5
            if info.date_parts and DATE in cand.kinds and not _states_date_parts(
                    cand.text, info.date_parts):
                kind *= 0.5  # "in what month and year?" is not answered by "2027"
            if info.currency and MONEY in cand.kinds:
                currency = _currency(cand.text)
                if currency not in (None, info.currency) and not (
                        currency == "$" and info.currency in ("USD", "HKD")):
                    kind *= 0.5  # "worth in US dollars?" is not answered in HK$
            if info.action and not cand.verbal and kind > 0.5:
                kind = 0.5  # "what will it do with the bids?" asks for a verb phrase
            if info.post:
                # "What post does she hold?" is answered by a title, nothing else.
                # Said in full it goes on with what it is for ("Secretary [for Innovation ...]").
                kind = (1.3 + 0.1 * (_NAME_GOES_ON.search(cand.text) is not None)
                        if _is_title(cand.text) else min(kind, 0.5))
            if info.counted and not listed:
                kind *= 0.7  # "which two places?" is at best half answered by one place
            if listed:
                # "Which two fields ...?" is answered by "artificial intelligence and health".
                kind += 0.3 if items == info.several or info.several == 2 else 0.15
            if info.unit and COUNT in info.types and (COUNT in cand.kinds or QUANTITY in
                                                      cand.kinds):
                # "How many bids": the number must count bids, not hectares.
                following = words(sentence[c.start - rel_start : c.end - rel_start + 40])
                n_cand = len(words(c.text))
                counted = {w[2] for w in following[: n_cand + 3]}
                kind *= 1.0 if info.unit in counted else 0.5
            if proper or led:
                # "Which river ...?" → "the Shenzhen River": a proper name ending in the
                # asked-for noun is that kind of thing, whatever the entity tagger said.
                kind = max(kind, 1.0) + 0.3
            out.append((cand, kind))
        # "December" / "December last year", "2026" / "the 2026 to 2027 financial year": of
        # two typed spans of one kind where one holds the other, the longer is the complete
        # expression. Plain phrases count only when the longer goes on as a name or an
        # of-phrase does ("the Secretary" / "the Secretary for Innovation and Technology"),
        # or every long clause would outrank its own noun chunks.
        for i, (cand, kind) in enumerate(out):
            typed_kinds = cand.kinds - {PHRASE}
            if any(
                other is not cand and cand.start <= other.start and other.end <= cand.end
                and (other.kinds & typed_kinds or (
                    other.start == cand.start and PHRASE in other.kinds & cand.kinds
                    and _NAME_GOES_ON.match(cand.text[other.end - cand.start :]) is not None))
                for other, _ in out
            ):
                out[i] = (cand, kind + 0.03)
            if DATE in cand.kinds and any(
                DATE in other.kinds and other.start <= cand.start and cand.end <= other.end
                and other.end - other.start > cand.end - cand.start for other, _ in out
            ):
                # "the 2026" of "the 2026 to 2027 financial year": a piece of a longer date
                # is not the date.
                out[i] = (cand, out[i][1] * 0.85)
        # "HK$220 million ($28.1 million)": a bracketed span right after a span of the
        # same kind restates it (a conversion, an acronym); the first statement is the
        # fact. A bracketed gloss with no twin before it ("the plan (2026-30)") is kept.
        for i, (cand, kind) in enumerate(out):
            lo, hi = cand.start - sent.start, cand.end - sent.start
            if not (sentence[:lo].rstrip().endswith("(") and sentence[hi:].lstrip()[:1] == ")"):
                continue
            bracket = sentence[:lo].rstrip()[:-1].rstrip()
            if any(
                other.kinds & cand.kinds - {PHRASE} and other.end - sent.start == len(bracket)
                for other, _ in out
            ):
                out[i] = (cand, kind * 0.8)
        if not info.typed and not info.post:
            for s, e in _clauses(info, sentence):
                text = sentence[s:e]
                kind = 0.9 if info.types[0] == REASON else 0.5 if info.action else 0.6
                out.append(
                    (Candidate(sent.start + s, sent.start + e, text, frozenset({REASON})), kind)
                )
        return out

    def _score_span(
        self, info: QuestionInfo, sent: ScoredSentence, cand: Candidate, idf: dict[str, float]
    ) -> tuple[float, float, float, float]:
        """(score, novelty, proximity, governed): new information, close to many question
        words, attached to them in the parse."""
        content = [w for w in words(cand.text) if not w[3]]
        if not content:
            return 0.0, 0.0, 0.0, 0.0
        q = set(info.terms)
        # "Which bureau ...?" is answered by "... Bureau": the asked-for noun may repeat, and
        # a name ending in it ("... Production Line Upgrade Support Program") may repeat
        # more of the question: a name describes its thing.
        asked = set() if _naming(info, cand.text)[0] else q - set(info.heads)
        new = [w for w in content if w[2] not in asked]
        novelty = len(new) / len(content)
        if info.action and cand.verbal and content[0][2] not in asked:
            # "What will it do with the pipes?" → "recycle the pipes": the new verb is the
            # news; the object it repeats is expected.
            novelty = max(novelty, 0.75)
        if info.post and _is_title(cand.text):
            # "What post does he hold in the Hong Kong government?" → "the Secretary for
            # Innovation and Technology of Hong Kong": the title is the news, where it is held
            # repeats the question.
            novelty = max(novelty, 0.75)
        if not any(w[2] not in q for w in content):
            return 0.0, 0.0, 0.0, 0.0  # the span only repeats the question
        sentence = sent.hit.text[sent.start - sent.hit.start : sent.end - sent.hit.start]
        offset = sent.start
        # "Professor Sun Dong, [the Secretary for ...]": a span set beside a name the question
        # says is that name again, not the other person or thing it asks for (it sits next to
        # the question's words, so its closeness means nothing either).
        apposed = not info.post and _appositive_of(
            sentence, cand.start - offset, cand.end - offset, q)
        sent_words = words(sentence)
        terms_at = _terms_at(sentence, info)
        inside = [
            i for i, w in enumerate(sent_words)
            if offset + w[0] >= cand.start and offset + w[1] <= cand.end
        ]
        if not inside:
            return 0.0, 0.0, 0.0, 0.0
        lo, hi = min(inside), max(inside)
        # Idf-weighted closeness to every question word found outside the span: an answer
        # sits next to the words the question shares with its sentence.
        weight = sum(idf.values()) or 1.0
        proximity = 0.0
        for term, term_idf in idf.items():
            where = [i for i, ts in enumerate(terms_at) if term in ts and not lo <= i <= hi]
            if where:
                distance = min(lo - i if i < lo else i - hi for i in where)
                proximity += term_idf * math.exp(-(distance - 1) / 4.0)
        proximity /= weight
        # The words the span hangs from in the parse: "began in [March]" answers "when did
        # it begin?" even when "Tuesday" sits nearer the question's other words.
        starts = {offset + w[0]: i for i, w in enumerate(sent_words)}
        governing = {t for g in cand.governors if g in starts for t in terms_at[starts[g]]}
        governed = sum(v for t, v in idf.items() if t in governing) / weight
        n_words = len(words(cand.text))
        length = 1.0 if n_words <= 12 else max(0.3, 12 / n_words)
        if not info.typed and n_words == 1:
            length *= 0.6  # free-form answers are phrases; a lone word is rarely all of one
        if info.stranded is not None and cand.preposition == info.stranded:
            # "What is the floor leased for?" asks for the object of "for" in the answer.
            governed += 0.5
        # "What investment-attraction approach ...?" → "scene investment attraction": a span
        # that repeats the words describing the asked-for thing is such a thing.
        described = [t for t in info.described if t != info.head and t in idf]
        if described and novelty > 0:
            span_terms = {w[2] for w in content}
            repeated = sum(idf[t] for t in described if t in span_terms)
            proximity += 0.5 * repeated / (sum(idf[t] for t in described) or 1.0)
        # Weight 1.0: the development questions (eval/dev) gain up to it and are flat above.
        score = (0.4 * novelty + 0.6 * proximity + 1.0 * governed) * length
        if apposed:
            score *= 0.2
        return score, novelty, proximity, governed


@lru_cache(maxsize=1024)
def _question_keys(info: QuestionInfo) -> dict[str, str]:
    """Stem → question term, also from each question word's dictionary form's stem."""
    keys = {t: t for t in info.terms}
    forms = {t.idx: t.lemma for t in parse_question(info.text) if t.lemma != t.lower}
    for start, _, stem, _ in words(info.text):
        if stem in keys and start in forms:
            for w in words(forms[start]):
                keys.setdefault(w[2], stem)
    return keys


@lru_cache(maxsize=4096)
def _terms_at(sentence: str, info: QuestionInfo) -> tuple[frozenset[str], ...]:
    """For each word of `sentence` (as `words` splits it), the question terms it matches:
    by stem, or by dictionary form ("began" matches "begin", "held" matches "hold")."""
    keys = _question_keys(info)
    forms = lemmas(sentence)
    out = []
    for start, _, stem, _ in words(sentence):
        found = {keys[stem]} if stem in keys else set()
        if start in forms:
            found.update(keys[w[2]] for w in words(forms[start]) if w[2] in keys)
        out.append(frozenset(found))
    return tuple(out)


def _naming(info: QuestionInfo, text: str) -> tuple[bool, bool]:
    """(proper, led) for a span of two or more words ending in the asked-for noun: the noun
    is capitalised ("the Shenzhen River"), a capitalised word leads it ("the Shenzhen
    municipal government"); (False, False) for any other span."""
    if info.head is None:
        return False, False
    content = [w for w in words(text) if not w[3]]
    # A possessive before the name is its determiner: "the country's [15th Five-Year Plan]".
    while len(content) > 2 and text[content[0][1] : content[0][1] + 2] in ("'s", "’s"):
        content.pop(0)
    if len(content) < 2:
        return False, False
    noun = content[-1][2]
    # "Which authority ...?" is answered by "the Shenzhen municipal government": a generic
    # organisation noun accepts any organisation's name; a specific one ("bureau") only its own.
    if noun != info.head and not (info.head in GENERIC_ORG_HEADS and noun in ORG_HEADS):
        return False, False
    capitals = [not text[w[0]].islower() for w in content]  # "14th Five-Year Plan" too
    # A name's words are capitalised up to its (possibly lower-case) trailing description:
    # "the Shenzhen municipal government", not "Our Hong Kong Foundation and executive
    # director of its Public Policy Institute".
    shaped = capitals[0] and capitals[-1] == all(capitals) and all(
        a or not b for a, b in zip(capitals, capitals[1:], strict=False))
    return shaped and capitals[-1], shaped


def _is_title(text: str) -> bool:
    """Whether a span is a post: a title word leads it ("the Secretary for Innovation and
    Technology", "executive director of its Public Policy Institute", "vice-president")."""
    found = [w.lower() for w in _WORD.findall(text)]
    while found and found[0] in _DETERMINERS:
        found.pop(0)
    return bool(found) and (found[0] in TITLE_WORDS or len(found) > 1 and found[
        1] in TITLE_WORDS and found[0] in _TITLE_MODIFIERS)


_WORD = re.compile(r"[A-Za-z][\w'-]*")
_DETERMINERS = frozenset("the a an its his her their our".split())
_TITLE_MODIFIERS = frozenset(
    "executive managing deputy vice chief acting former permanent financial general "
    "associate assistant senior".split())


def _lower_case_scheme(info: QuestionInfo, cand: Candidate) -> bool:
    """Whether a plain noun phrase names a scheme-like thing a question asks for by such a
    noun: programmes, plans and funds are often named in lower case."""
    if info.head not in SCHEME_HEADS or PHRASE not in cand.kinds or cand.verbal:
        return False
    content = [w for w in words(cand.text) if not w[3]]
    return len(content) >= 3 and content[-1][2] in SCHEME_HEADS


def _clauses(info: QuestionInfo, sentence: str) -> list[tuple[int, int]]:
    """Clause spans for free-form questions: after a purpose word, or after the question's
    last matched word, up to the next clause boundary."""
    spans: list[tuple[int, int]] = []
    if info.types[0] == REASON:
        for m in _PURPOSE.finditer(sentence):
            stop = _BOUNDARY.search(sentence, m.end())
            end = stop.start() if stop else len(sentence)
            if end - m.end() > 3:
                spans.append((m.end(), end))
    sent_words = words(sentence)
    matched = [w for w, ts in zip(sent_words, _terms_at(sentence, info), strict=True) if ts]
    if matched:
        after = matched[-1][1]
        # Skip function words right after the anchor ("focus on X" → X).
        rest = [w for w in sent_words if w[0] >= after]
        while rest and rest[0][3]:
            rest.pop(0)
        if rest:
            begin = rest[0][0]
            stop = _BOUNDARY.search(sentence, begin)
            end = stop.start() if stop else len(sentence)
            if end > begin:
                spans.append((begin, end))
    return spans


def clear_cache() -> None:
    """Forget cached question keys and sentence term matches."""
    _question_keys.cache_clear()
    _terms_at.cache_clear()


def with_feature(reading: Reading, name: str, value: float) -> Reading:
    """The reading with one feature set (readings are immutable)."""
    from dataclasses import replace

    return replace(reading, features={**reading.features, name: value})
