"""Chunking: exact slices, full coverage, token bounds, sentence-aware cuts, overlap, stable ids."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import Chunk, Chunker, split_lines, split_sentences
from rag.documents import Document, read_document
from tests.fakes import make_chunker, paragraphs_article, real_counter

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
SEED_FILES = sorted(p.name for p in SEEDS.iterdir() if p.is_file())


def long_sentence_doc() -> Document:
    """Normal sentences around one run-on sentence of several hundred word pieces."""
    clauses = ", ".join(
        f"the {word} committee number {i} reviewed budget line {i * 7} for district {i}"
        for i, word in enumerate(["harbour", "transport", "housing", "health", "water"] * 12)
    )
    text = (
        "Council report\n\n"
        "The council met on Monday. It heard three reports.\n\n"
        f"In a single breath the chair listed the work done, {clauses} and then paused.\n\n"
        "Members voted at noon. The motion passed by nine votes to two.\n"
    )
    return Document(source="council.txt", text=text, body_start=text.index("The council"))


def short_sentences_doc() -> Document:
    text = paragraphs_article(12)
    return Document(source="short.txt", text=text, body_start=text.index("Paragraph 0"))


def seed(name: str) -> Document:
    return read_document(SEEDS / name)


DOCS = {name: (lambda n=name: seed(n)) for name in SEED_FILES}
DOCS["long-sentence"] = long_sentence_doc
DOCS["short-sentences"] = short_sentences_doc


def units(doc: Document) -> list[tuple[int, int]]:
    """What the chunker packs: the header's lines, then the body's sentences."""
    return split_lines(doc.text, 0, doc.body_start) + split_sentences(doc.text, doc.body_start)


def check_invariants(doc: Document, chunks: list[Chunk], chunker: Chunker) -> None:
    """The properties every chunking must have, whatever the text."""
    assert chunks, "a document with a body must give at least one chunk"
    covered = bytearray(len(doc.text))
    for ordinal, c in enumerate(chunks):
        assert c.ordinal == ordinal
        assert c.source == doc.source
        assert doc.text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert 0 <= c.start < c.end <= len(doc.text)
        n_tokens = chunker.counter.count(c.text)
        assert n_tokens == c.n_tokens
        assert n_tokens <= chunker.max_tokens, (c.ordinal, n_tokens)
        for s, e in c.sentences:
            assert c.start <= s < e <= c.end
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [  # the header is chunked too
        i for i in range(len(doc.text))
        if not doc.text[i].isspace() and not covered[i]
    ]
    assert not missing, f"uncovered text: {doc.text[missing[0]:missing[0] + 40]!r}"
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    ends = [c.end for c in chunks]
    assert ends == sorted(ends)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_chunk_invariants(name: str) -> None:
    doc = DOCS[name]()
    chunker = make_chunker()
    check_invariants(doc, chunker.chunk(doc), chunker)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_cuts_fall_between_sentences_unless_a_sentence_is_too_long(name: str) -> None:
    doc = DOCS[name]()
    chunker = make_chunker()
    sentences = units(doc)
    too_long = [
        (s, e) for s, e in sentences if real_counter().count(doc.text[s:e]) > chunker.max_tokens
    ]
    starts = {s for s, _ in sentences}
    ends = {e for _, e in sentences}
    for c in chunker.chunk(doc):
        inside_long = [(s, e) for s, e in too_long if s <= c.start < e or s < c.end <= e]
        if inside_long:
            # A cut inside an over-long sentence still falls between words.
            assert c.start == inside_long[0][0] or not doc.text[c.start - 1].isalnum()
            assert c.end == len(doc.text) or not doc.text[c.end].isalnum()
            continue
        assert c.start in starts, (c.ordinal, doc.text[c.start - 20 : c.start + 20])
        assert c.end in ends, (c.ordinal, doc.text[c.end - 20 : c.end + 20])


def test_seed_chunks_end_at_sentence_punctuation() -> None:
    """Independent of the splitter: every seed chunk ends where a sentence ends."""
    chunker = make_chunker()
    for name in SEED_FILES:
        for c in chunker.chunk(seed(name)):
            assert re.search(r"[.!?][\"'”’)]?$", c.text), (name, c.ordinal, c.text[-40:])


def test_the_header_is_chunked_line_by_line_before_the_body() -> None:
    """The headline, date and outlet lines are searchable and citable, each its own unit."""
    doc = seed("003_fcf2125f3a29daa1.txt")
    first = make_chunker().chunk(doc)[0]
    lines = [doc.text[s:e] for s, e in first.sentences if e <= doc.body_start]
    assert lines[0].startswith("Sun Dong: The urban areas") and "GMT Eight" in lines
    assert first.start == 0 and all("\n" not in line for line in lines)
    # The body's first sentence starts a unit of its own, as when the header was skipped.
    assert doc.body_start in {s for s, _ in first.sentences}


def test_long_sentence_is_split_into_bounded_overlapping_pieces() -> None:
    doc = long_sentence_doc()
    chunker = make_chunker()
    s = doc.text.index("In a single breath")
    e = doc.text.index("and then paused.") + len("and then paused.")
    assert real_counter().count(doc.text[s:e]) > 2 * chunker.max_tokens  # really over-long
    inside = [c for c in chunker.chunk(doc) if c.start < e and c.end > s]
    assert len(inside) >= 3
    for a, b in zip(inside, inside[1:], strict=False):
        assert b.start < a.end, "pieces of one long sentence overlap"
    assert all(c.n_tokens <= chunker.max_tokens for c in inside)


def test_overlap_is_present_where_sentences_are_short() -> None:
    doc = short_sentences_doc()
    chunker = make_chunker(max_tokens=80, overlap_tokens=30)
    chunks = chunker.chunk(doc)
    assert len(chunks) >= 5
    sentence_starts = {s for s, _ in split_sentences(doc.text, doc.body_start)}
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, f"no overlap between chunks {a.ordinal} and {b.ordinal}"
        assert b.start in sentence_starts  # the overlap is whole sentences
        assert real_counter().count(doc.text[b.start : a.end]) <= chunker.overlap_tokens


def test_seed_000_has_overlap_where_its_sentences_are_short() -> None:
    chunks = make_chunker().chunk(seed("000_1ab512602a64e1c4.txt"))
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))


def test_no_overlap_requested_means_none_given() -> None:
    doc = short_sentences_doc()
    chunks = make_chunker(max_tokens=80, overlap_tokens=0).chunk(doc)
    assert all(b.start >= a.end for a, b in zip(chunks, chunks[1:], strict=False))


def test_chunk_ids_are_content_hashes() -> None:
    chunker = make_chunker()
    doc = seed("000_1ab512602a64e1c4.txt")
    first = [c.chunk_id for c in chunker.chunk(doc)]
    again = [c.chunk_id for c in make_chunker().chunk(read_document(SEEDS / doc.source))]
    assert first == again
    assert len(set(first)) == len(first)
    renamed = Document(source="renamed.txt", text=doc.text, body_start=doc.body_start)
    assert not set(first) & {c.chunk_id for c in chunker.chunk(renamed)}
    # Editing the last paragraph leaves the ids of the untouched leading chunks alone.
    edited_text = doc.text.replace("elite enterprises nurturing scheme", "elite firms scheme")
    assert edited_text != doc.text
    edited = Document(source=doc.source, text=edited_text, body_start=doc.body_start)
    edited_ids = [c.chunk_id for c in chunker.chunk(edited)]
    assert edited_ids[:-1] == first[:-1] and edited_ids[-1] != first[-1]


def test_chunker_parameters_are_validated_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="overlap_tokens .* must be .* smaller than max_tokens"):
        make_chunker(max_tokens=50, overlap_tokens=50)
    with pytest.raises(ValueError, match="max_tokens must be >= 16"):
        make_chunker(max_tokens=8, overlap_tokens=0)


def test_a_headline_does_not_merge_with_the_next_paragraph() -> None:
    text = "Ferry record\n\nThe ferry carried 4,321 passengers. A second boat follows.\n"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Ferry record", "The ferry carried 4,321 passengers.", "A second boat follows.",
    ]


def test_a_bracketed_credit_or_source_belongs_to_the_sentence_before_it() -> None:
    text = ("Ferry record\n\nThe captain waves from the deck. (MARY LAM/CHINA DAILY)\n\n"
            "(Reuters) The ferry sails daily. [Photo]\n")
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Ferry record", "The captain waves from the deck. (MARY LAM/CHINA DAILY)",
        "(Reuters)", "The ferry sails daily. [Photo]",
    ]


_WORDS = st.sampled_from(
    "the harbour ferry carried 4,321 passengers Dr. Chan said U.S. HK$220 million (ANDY) "
    "semiconductor-related e.g. 2026-27 Budget — “quoted” co-operation internationalisation "
    "supercalifragilisticexpialidocious 香港 no. 5 p.m. on Monday".split()
    # Runs without spaces: no word start to cut at, and word pieces that change when cut.
    + ["a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t", "hh香港Dr.U.S.Dr.iU.S.", "ab" * 60, "x" * 30]
)
_SENTENCE = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(_WORDS, min_size=1, max_size=40),
    st.sampled_from([".", "!", "?", "", ".\"", " ..."]),
)
_PARAGRAPH = st.builds(
    lambda sentences, sep: sep.join(sentences),
    st.lists(_SENTENCE, min_size=1, max_size=6),
    st.sampled_from([" ", "  ", "\n", " \t"]),
)
_ARTICLE = st.builds(
    lambda paras, sep, lead: lead + sep.join(paras),
    st.lists(_PARAGRAPH, min_size=1, max_size=6),
    st.sampled_from(["\n\n", "\n \n", "\r\n\r\n", "\n\n\n"]),
    st.sampled_from(["", "  ", "\n"]),
)


@settings(
    max_examples=60, deadline=None, database=None, derandomize=True,  # same cases in CI
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=_ARTICLE, limits=st.sampled_from([(16, 0), (24, 8), (40, 15), (180, 40)]))
def test_chunk_invariants_hold_for_any_text(text: str, limits: tuple[int, int]) -> None:
    if not text.strip():
        return
    doc = Document(source="random.txt", text=text)
    chunker = make_chunker(*limits)
    check_invariants(doc, chunker.chunk(doc), chunker)


def test_characters_the_sentence_splitter_drops_are_kept() -> None:
    # pysbd returns "Ask the Dr." and "...Then ..." here, silently losing "!?\n".
    text = "Ask the Dr.!?\n...Then U.S. officials left."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["Ask the Dr.!?", "...Then U.S. officials left."]


_TRICKY = [
    "", " ", "a. b. a. b.", "Mr. Smith went. Mr. Smith went.  Dr. No! (Reuters)",
    "U.S. A.B.C. e.g. i.e. etc. He said so.", "It costs 3.5 m. yuan. No. 7 won at 5 p.m. Ok.",
    "He said \"Stop.\" She left.\tThen... nothing? Yes!", "Gov. Lee met Sen. Ho on Jan. 5.",
    "Dr. İnan met Gen. ſmith at 5 p.m. Then he left. PROF. Wu and Capt. Ng. agreed.",
    "The co. said Approx. 40 ppl. came, incl. the Ph.D. students of Univ. Hong Kong. Done.",
    "Steps: 1. Dig. 2. Pour 3. Wait. Then 4) rest 5) go. a. one b. two c. three d) x e) y",
    "(a) first (b) second (c) third. i. alpha ii. beta iii. gamma (iv) delta (v) Eps",
    "Room 12. 13 people came at 9.30 a.m. on Jan. 2 (b) or (c). Vitamin C. No. 5).",
]


def _distractor_paragraphs(n: int) -> list[str]:
    """Paragraphs of the first `n` Wikipedia articles of the distractor corpus."""
    lines = (ROOT / "eval" / "distractors" / "squad.jsonl").read_text(encoding="utf-8").splitlines()
    return [p for line in lines[:n] for p in json.loads(line)["text"].split("\n\n")]


@pytest.mark.parametrize("name", [*SEED_FILES[:6], "wikipedia"])
def test_fast_segmenter_matches_pysbd(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast segmenter returns exactly what plain pysbd returns, per paragraph."""
    import pysbd
    import pysbd.abbreviation_replacer
    import pysbd.lists_item_replacer

    from rag.chunking import _PARAGRAPH_RE, _segmenter

    fast = _segmenter()
    if name == "wikipedia":
        paras = _distractor_paragraphs(60)
    else:
        text = (SEEDS / name).read_text(encoding="utf-8")
        paras = [m.group() for m in _PARAGRAPH_RE.finditer(text)] + _TRICKY
    ours = [fast(p) for p in paras]
    # The reference is pysbd as shipped: its own abbreviation search and the plain `re`.
    replacer = pysbd.abbreviation_replacer.AbbreviationReplacer
    monkeypatch.setattr(replacer, "search_for_abbreviations_in_string",
                        replacer.pysbd_search_for_abbreviations)
    monkeypatch.setattr(pysbd.abbreviation_replacer, "re", re)
    items = pysbd.lists_item_replacer.ListItemReplacer
    monkeypatch.setattr(items, "scan_lists", items.pysbd_scan_lists)
    monkeypatch.setattr(items, "iterate_alphabet_array", items.pysbd_iterate_alphabet_array)
    plain = pysbd.Segmenter(language="en", clean=False, char_span=False)
    for para, got in zip(paras, ours, strict=True):
        assert got == plain.segment(para), para


def test_span_counts_from_one_pass_equal_counting_each_span_alone() -> None:
    """The one-pass counter agrees with `count` on every span, word-bounded or not."""
    counter = real_counter()
    text = ("Head\n\nCafé déjà vu: 北京 and naïve\x1cjoin tabs\there, e-mail a@b.c!\n"
            "Über-long antidisestablishmentarianism (x). 3.5% \u00a0nbsp\r\nend")
    count = counter.span_counter(text, 6)
    cuts = range(6, len(text) + 1)
    for s in cuts:
        for e in cuts:
            if s < e:
                assert count(s, e) == counter.count(text[s:e]), (s, e, text[s:e])
