"""Question analysis: what kind of answer is asked for, and which words carry the question."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from rag.sparse import tokenize

if TYPE_CHECKING:
    from rag.reading.spans import QuestionToken

# Expected answer types. A question may accept several (e.g. "who" → person or organisation).
MONEY, PERCENT, QUANTITY, COUNT, DURATION, DATE = (
    "MONEY", "PERCENT", "QUANTITY", "COUNT", "DURATION", "DATE"
)
PERSON, ORG, PLACE, NAME, REASON, PHRASE = "PERSON", "ORG", "PLACE", "NAME", "REASON", "PHRASE"

_ORG_NOUNS = (
    r"organi[sz]ation|institute|institution|university|company|firm|bureau|ministry|department|"
    r"agency|body|think tank|council|government|authority|foundation|group|party|outlet|"
    r"newspaper|committee|office|administration|developer|commission|association|corporation"
)


def _stems(nouns: str) -> frozenset[str]:
    """Stems of a |-separated noun list ("think tank" gives "tank" only)."""
    return frozenset(tokenize([nouns.replace("|", " ")])[0]) - {"think", "who"}


ORG_HEADS = _stems(_ORG_NOUNS)
# Which organisation nouns a generic "which authority / body / organisation" question
# accepts as the end of a name ("the Shenzhen municipal government"). Not "institution": it
# stems like "institute", which asks for an institute.
GENERIC_ORG_HEADS = _stems(
    "authority|body|organisation|organization|agency|entity|administration|government"
)
_PERSON_NOUNS = (
    r"person|official|professor|secretary|minister|president|chairman|chair|director|chief|"
    r"executive|leader|spokesman|spokeswoman|spokesperson|lawmaker|scientist|expert|founder|"
    r"head|ceo|economist|analyst|mayor|governor|legislator|politician|councillor|councilor|"
    r"commissioner|photographer|journalist|reporter|author|writer|architect|engineer|"
    r"researcher|investor|developer|winner|candidate|judge|who"
)
_PLACE_NOUNS = (
    r"place|area|district|location|city|town|country|region|site|river|port|park|zone|border|"
    r"village|island|province|street|building|venue|estate"
)
_NAME_NOUNS = (
    r"program|programme|scheme|plan|fund|agreement|policy|initiative|project|strategy|motion|"
    r"outline|report|law|bill|title|name|slogan|motto|concept|pattern|phrase|mechanism"
)
# Words that make a phrase a post ("the Secretary for Innovation and Technology", "executive
# director of its Public Policy Institute"), asked for by "what post / position / role ...?".
TITLE_WORDS = frozenset(
    "secretary minister president vice-president chairman vice-chairman chairwoman chair "
    "chairperson director chief commissioner governor mayor officer head professor dean "
    "spokesman spokeswoman spokesperson ambassador consul deputy undersecretary treasurer "
    "manager founder co-founder ceo premier judge lawmaker legislator principal editor "
    "controller convenor superintendent vice-chair vice-chairwoman vice-chairperson "
    "vice-principal chancellor vice-chancellor".split()
)  # whole words, not stems: "legislator" is a post, "Legislative Council" is not
# Not "role" ("what role does the city play?"), "office" ("which office handles it?") nor
# "what is its position" (a stance).
_POST = re.compile(r"\b(?:what|which) (?:\w+ )?(?:post|position|job|portfolio)s? "
                   r"(?:does|did|do|will|would|has|had|is|was|of)\b"
                   r"|\bwhat (?:is|was) (?:[\w']+ ){0,4}(?:post|job|job title)\b")

# Things news text often names in lower case ("the elite enterprises nurturing scheme"),
# and one is asked for by another's name ("which programme" → "... scheme").
SCHEME_NOUNS = "scheme|programme|program|plan|fund|initiative|project|policy|strategy"
SCHEME_HEADS = _stems(SCHEME_NOUNS)

# Ordered: the first matching rule decides. Patterns run on the lower-cased question.
# "What will the dedicated company for ... be called?": a question about how a thing is named
# (its noun phrase, when it has a determiner, says what sort of thing: `det`).
_CALLED = re.compile(r"\bwhat (?:is|are|was|were|will|would|should|shall) "
                     r"(?P<det>(?:the|its|their|this|that|a|an) )?.*\b(?:called|named)\b"
                     r"(?!\s+after)")
_RULES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"\bwhy\b|\bfor what (?:purpose|reason)\b|\bwhat (?:is|was|are) the "
                r"(?:aim|goal|purpose|reason|rationale|objective)s?\b|\bin order to\b"), (REASON,)),
    (re.compile(r"\bwhat percentage\b|\bwhat share\b|\bwhat proportion\b|\bhow many percent"),
     (PERCENT,)),
    (re.compile(r"\bhow long\b|\bhow many (?:years|months|weeks|days|hours)\b"), (DURATION,)),
    # "What period does the plan cover?" is answered by a span of years ("2026-30") as often
    # as by a length of time.
    (re.compile(r"\bwhat (?:time ?frame|timeframe|period|duration)\b"), (DURATION, DATE)),
    (re.compile(r"\bhow much (?:money|funding|cash|capital)\b"
                r"|\bhow much (?:will|did|does|is|was|has|have|would|are)\b.*\b(?:cost|spend|"
                r"spent|earmark|allocat|budget|invest|fund|pay|paid|set aside|put|give|raise|worth)"
                r"|\bwhat (?:is|was|will be) the (?:total |annual |overall |estimated )?"
                r"(?:cost|price|budget|amount|sum|value|spending|expenditure)\b"
                r"(?=\s+(?:of|for|in|on|to)\b|\s*\?|\s*$)"
                r"|\bhow much\b.*\b(?:cost|budget|earmark|allocat|fund)|\bwhat (?:sum|amount)\b"
                r"|\bhow much\b.*\$|\bwhat (?:is|was|are|were) .* worth\b"
                r"|\bwhat (?:will|would|does|did|do)\b.*\bcost\b"), (MONEY,)),
    (re.compile(r"\bhow (?:big|large|small|wide|long|tall|high|far|much land|much space)\b"
                r"|\bwhat (?:size|area)\b|\bwhat (?:is|was|are|were) the (?:size|area)\b"
                r"|\bhow many (?:hectares|acres|square|km|kilometres|kilometers|metres|meters|miles"
                r"|feet)\b"), (QUANTITY,)),
    (re.compile(r"\bhow many\b"), (COUNT, QUANTITY)),
    (re.compile(r"\bhow much\b"), (MONEY, QUANTITY)),
    (re.compile(r"\bwhen\b|\bwhat (?:date|day|weekday|year|month|time|quarter|week)s?\b"
                r"|\bwhich (?:date|day|weekday|year|month|quarter|week|financial year)s?\b"
                r"|\bwhat financial year\b|\bon what (?:date|day)\b|\bin what (?:year|month)s?\b"),
     (DATE,)),
    (re.compile(rf"\b(?:which|what) (?:\w+ )?(?:{_PLACE_NOUNS})s?\b|\bwhere\b"), (PLACE,)),
    (re.compile(rf"\b(?:which|what) (?:\w+ )?(?:{_ORG_NOUNS})\b"), (ORG,)),
    # "Who" may be answered by an organisation; "which legislator" only by a person.
    (re.compile(rf"\b(?:which|what) (?:\w+ )?(?:{_PERSON_NOUNS})\b"), (PERSON,)),
    (re.compile(r"\bwho(?:m|se)?\b"), (PERSON, ORG)),
    (re.compile(rf"\bwhat (?:is|was|are|were) (?:the |its |their )?(?:name|title|called|slogan|"
                rf"motto|nickname)\b|{_CALLED.pattern}"
                rf"|\b(?:which|what) (?:\w+ )?(?:{_NAME_NOUNS})s?\b"), (NAME,)),
]

PLACE_HEADS = _stems(_PLACE_NOUNS)
# A country, city or region is not a person, a company or a university; it does stand for
# its government ("which government ...?" → "Hong Kong").
PLACE_AS_ORG_HEADS = _stems(
    "government|administration|authority|side|city|state|country|region|economy|"
    "municipality|jurisdiction"
)
# Organisations of different sorts: a name ending in a noun of one sort ("the Innovation and
# Technology Bureau") is not what "which company ...?" asks for. Generic nouns ("which
# organisation / body ...?") and nouns of no sort here accept any organisation.
ORG_SORTS = tuple(_stems(nouns) for nouns in (
    "company|firm|corporation|developer|limited|ltd|holdings|enterprise",
    "government|bureau|ministry|department|council|authority|commission|administration|"
    "legislature|office",
    "university|college|school",
))
# Documents: "the Conceptual Outline of the Development Plan ..." is no company or person.
DOCUMENT_HEADS = _stems(
    "outline|plan|report|agreement|budget|strategy|blueprint|policy|law|ordinance|bill|motion|"
    "treaty|pact|speech|address|statement|paper|study|survey|guideline|framework|declaration|"
    "memorandum|charter|constitution"
)
_NOUN_CLASSES: list[tuple[tuple[str, ...], frozenset[str]]] = [
    ((PLACE,), PLACE_HEADS), ((ORG,), ORG_HEADS), ((PERSON,), _stems(_PERSON_NOUNS)),
    ((NAME,), _stems(_NAME_NOUNS)),
]

_VERBS = (
    r"is|are|was|were|be|been|does|do|did|will|would|can|could|has|have|had|should|shall|may|"
    r"might|must"
)
_WH_PHRASE = re.compile(
    rf"\b(?:which|what)\s+(?:kinds? of |types? of |sorts? of )?((?:(?!(?:{_VERBS})\b)[\w-]+\s+)"
    rf"{{0,5}}?(?!(?:{_VERBS})\b)[\w-]+)\s+(?:{_VERBS})\b"
)
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

_COUNTED = re.compile(r"\b(?:which|what)\s+(two|three|four|five|six|seven|eight|nine|ten)\s+\w")
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b")
# "How did she describe the move?" asks for what it was described as.
_HOW_DESCRIBED = re.compile(
    r"\bhow (?:do|does|did|would|will|could|can|has|have|had)\b.*\b(?:describ|call|characteri[sz]|"
    r"label|view|see|regard|term|dub|portray|depict)\w*\b"
)
# Which parts of a date the question wants: "in what month and year" is not answered by "2027".
_DATE_PARTS = re.compile(
    r"\b(?:what|which)\s+(month|year|day|weekday)(?:\s+and\s+(month|year|day))?\b"
    r"(?!'s|\s+(?:plan|budget|report))"
)
# Currencies a question can ask an amount in, and how an amount names each.
CURRENCIES: dict[str, re.Pattern[str]] = {
    "USD": re.compile(r"\bus ?dollars?\b|\bu\.s\. dollars?\b|\busd\b|\bus\$|\bamerican dollars?\b"),
    "HKD": re.compile(r"\b(?:hk|hong kong) ?dollars?\b|\bhkd\b|\bhk\$"),
    "CNY": re.compile(r"\byuan\b|\brmb\b|\brenminbi\b"),
    "EUR": re.compile(r"\beuros?\b|€"),
    "GBP": re.compile(r"\bpounds? sterling\b|\bsterling\b|£"),
}


@dataclass(frozen=True)
class QuestionInfo:
    """The parsed question: expected answer types and weighted content terms."""

    text: str
    types: tuple[str, ...]
    terms: tuple[str, ...]  # stemmed content words (BM25 tokenisation), in question order
    wh: str | None
    unit: str | None = None  # stem of the counted noun in "how many <noun>"
    # Stems of the phrase naming the asked-for thing: "which [bureau]", "what [investment-
    # attraction approach]".
    heads: tuple[str, ...] = ()
    head: str | None = None  # stem of the last word of the which/what phrase: "which think [tank]"
    several: int = 0  # the question asks for several things: their number, or 2 if unsaid
    # The preposition the answer is the object of: left at the end ("what is it used [for]?")
    # or put first ("[under] which principle ...?").
    stranded: str | None = None
    action: bool = False  # "what will the government [do] with ...?" asks for a verb phrase
    date_parts: frozenset[str] = frozenset()  # "in what month and year": {"month", "year"}
    currency: str | None = None  # "worth in US dollars": "USD"
    counted: bool = False  # `several` was said in the question ("which two places")
    post: bool = False  # "what post does she hold?" asks for a title ("Secretary for ...")
    # Stems of the which/what phrase before any "of": "what [investment-attraction] approach".
    described: tuple[str, ...] = ()
    # Stems of the names the question says ("How many hectares does [New Tian Science and
    # Technology City] cover?"): a sentence that answers it says them too.
    names: tuple[str, ...] = ()
    # "Who took the photo?" is answered by a caption's credit, not by who is in the photo.
    credit: bool = False
    # What an asked-for amount must be ("the [total] spending", "the [annual] budget"): each
    # a pattern for the ways a sentence says it.
    qualifiers: tuple[re.Pattern[str], ...] = ()
    # The post a who-question asks about: "who [chairs] ...?", "who is the [chief executive]
    # of ...?" (lower-case words, each the start of a word of the post).
    role: tuple[str, ...] = ()

    @property
    def typed(self) -> bool:
        """Whether the question asks for a specific kind of span (not a free phrase)."""
        return self.types[0] not in (PHRASE, REASON)


@lru_cache(maxsize=4096)
def analyse(question: str) -> QuestionInfo:
    """Classify the expected answer type and extract the question's content terms."""
    q = " ".join(question.lower().split())
    types: tuple[str, ...] = (PHRASE,)
    for pattern, kinds in _RULES:
        if pattern.search(q):
            types = kinds
            break
    wh_match = _WH.search(q)
    terms = tuple(dict.fromkeys(tokenize([question])[0]))
    unit = None
    if m := re.search(r"\bhow many (?:\w+ ){0,2}?(\w+)\b", q):
        stems = tokenize([m[1]])[0]
        unit = stems[0] if stems else None
    heads: tuple[str, ...] = ()
    described: tuple[str, ...] = ()
    head = None
    if m := re.search(r"\b(?:which|what)\s+(?:kinds? of |types? of |sort of )?(\w+)(?:\s+(\w+))?",
                      q):
        heads = tuple(tokenize([m[1]])[0])
    # The asked-for noun is the last word of the phrase after which/what, before the verb:
    # "which think [tank] is", "what kind of new [city] does", "which two [projects] does".
    several = 0
    said = False
    if m := _WH_PHRASE.search(q):
        words = m[1].split()
        if "of" in words[1:]:  # "two fields of technology": the head comes before "of"
            words = words[: words.index("of", 1)]
        phrase = [w for w in words if w not in _NUMBER_WORDS]
        # Every word of the phrase describes the asked-for thing, and its name may repeat
        # them: "what investment-attraction approach?" → "scene investment attraction",
        # "which field of research?" → "semiconductor-related research" (`described`:
        # those before any "of").
        described = tuple(tokenize([" ".join(phrase)])[0])
        heads = tuple(dict.fromkeys([*heads, *tokenize([m[1]])[0]]))
        stems = tokenize([phrase[-1]])[0] if phrase else []
        head = stems[0] if stems else None
        # "which two places", "what kinds of facilities", "which resources": a list answer.
        counted = [_NUMBER_WORDS.index(w) + 1 for w in words if w in _NUMBER_WORDS]
        plural = bool(phrase) and re.fullmatch(r"\w*[^su]s|\w+ies", phrase[-1]) is not None
        if counted and counted[0] > 1:
            several = counted[0]
            said = True
        elif plural or re.search(r"\b(?:which|what) (?:kinds|types|sorts) of\b", q):
            several = 2
    # The pattern above needs an auxiliary after the phrase; "which programme pays ...",
    # "which authority across the border is ..." and "... meets which corridor?" need the
    # parse: the noun that which/what determines is the asked-for thing.
    parsed = _determined_noun(question)
    called = parsed is None and (m := _CALLED.search(q)) is not None and m["det"] is not None
    if called:
        # "What will the dedicated [company] for developing New Tian be called?": the
        # asked-for thing is the one being named, so its name is a company's. It is the
        # first noun that is not part of a compound ("sports [stadium]").
        parsed = next(((t.lower, False) for t in _parse(question)
                       if t.pos == "NOUN" and t.dep != "compound"), None)
    if parsed is not None:
        noun, plural_noun = parsed
        stems = tokenize([noun])[0]
        if stems:
            head = stems[0]
            if several == 0 and plural_noun:
                several = 2
    if head is not None and types[0] in (PLACE, ORG, PERSON, NAME):
        # "Which government spending [plan]": the asked-for noun decides the kind, not a
        # modifier the pattern above caught ("government").
        types = next((kinds for kinds, nouns in _NOUN_CLASSES if head in nouns), types)
        if called and types[0] != NAME:
            # "What will the company be called?": an organisation's name, or at least a name.
            types = (types[0], NAME)
    if not said and (m := _COUNTED.search(q)):
        # "Which two slogans describe ...": no auxiliary for the phrase pattern, and the
        # small parser misattaches a which followed by a number.
        several, said = _NUMBER_WORDS.index(m[1]) + 1, True
    stranded = None
    if m := re.search(r"\b(for|to|with|on|in|into|from|about|by|at|of|as)\s*\?*\s*$", q):
        # "... the motion that Sun Dong spoke [on]?": a relative clause keeps its own.
        if wh_match and wh_match[1] in ("what", "which", "who", "whom") and not re.search(
                r"\b(?:that|which|who|whom)\b", q[wh_match.end() : m.start()]):
            stranded = m[1]
    elif _HOW_DESCRIBED.search(q):
        stranded = "as"
    elif m := _FRONTED.search(q):
        # "Under which principle ...?", "in what month ...?": the answer is the object of the
        # same preposition in its sentence, as with a stranded one.
        stranded = m[1]
    date_parts: frozenset[str] = frozenset()
    if DATE in types and (m := _DATE_PARTS.search(q)):
        date_parts = frozenset("day" if p == "weekday" else p for p in m.groups() if p)
    currency = next((c for c, pattern in CURRENCIES.items() if pattern.search(q)), None)
    if currency and types[0] not in (MONEY, QUANTITY, COUNT):
        types = (MONEY,)  # "... in US dollars?" asks for an amount of them
    action = (types[0] == PHRASE and wh_match is not None and wh_match[1] == "what"
              and head is None and any(t.lemma == "do" and t.pos == "VERB"
                                       for t in _parse(question)))
    role = _role(q)
    if role and PERSON in types:
        types = (PERSON,)  # "who chairs ...?" asks for a person: an organisation holds no post
    return QuestionInfo(question, types, terms, wh_match[1] if wh_match else None, unit, heads,
                        head, several, stranded, action, date_parts, currency, said,
                        _POST.search(q) is not None, described, _names(question), role=role,
                        credit=_CREDIT_QUESTION.search(q) is not None,
                        qualifiers=tuple(said for asked, said in _QUALIFIERS
                                         if types[0] in _MEASURES and asked.search(q)))


_MEASURES = frozenset({MONEY, COUNT, QUANTITY, PERCENT})
# How a question qualifies an amount, and the ways a sentence says that it is one.
_QUALIFIERS = tuple((re.compile(asked), re.compile(said, re.IGNORECASE)) for asked, said in (
    (r"\b(?:total|overall|altogether|in all|combined)\b",
     r"\b(?:total(?:s|l?ed|l?ing)?|overall|altogether|in all|combined|whole|entire|"
     r"aggregate|sum)\b"),
    (r"\b(?:annual|annually|yearly|(?:a|per|each|every) year)\b",
     r"\b(?:annual|annually|yearly|(?:a|per|each|every) year|per annum)\b"),
    (r"\b(?:monthly|(?:a|per|each|every) month)\b", r"\b(?:monthly|(?:a|per|each|every) month)\b"),
    (r"\b(?:average|mean)\b", r"\b(?:average|mean|on average)\b"),
    (r"\b(?:maximum|most|largest|highest)\b",
     r"\b(?:maximum|max|up to|at most|cap|capped|ceiling|most|largest|highest)\b"),
    (r"\b(?:minimum|least|smallest|lowest)\b",
     r"\b(?:minimum|min|at least|floor|least|smallest|lowest)\b"),
))


_CREDIT_QUESTION = re.compile(
    r"\bwho (?:took|shot|snapped|captured|is behind|was behind)\b[^?]*\b(?:photo|photograph|"
    r"picture|image)s?\b|\bwho is the photographer\b|\bwhose (?:photo|photograph|picture)\b")


# "Who chairs ...?" asks for whoever holds the post the verb names.
_ROLE_VERBS = {"chairs": ("chair",), "chaired": ("chair",), "heads": ("head",),
               "headed": ("head",), "leads": ("lead",), "led": ("lead",),
               "directs": ("director",), "directed": ("director",), "founded": ("found",)}
_ROLE_VERB = re.compile(r"^\s*who (?:currently |now |will )?(" + "|".join(_ROLE_VERBS) + r")\b")
_ROLE_NOUN = re.compile(r"^\s*who (?:is|was|will be|are|were) (?:the |its |their )?"
                        r"((?:[\w-]+ ){1,3}?)(?:of|at|for|in)\b")


def _role(q: str) -> tuple[str, ...]:
    """The post a lower-cased who-question asks about, as its words; () if none."""
    if m := _ROLE_VERB.match(q):
        return _ROLE_VERBS[m[1]]
    if (m := _ROLE_NOUN.match(q)) and any(w in TITLE_WORDS for w in m[1].split()):
        return tuple(m[1].split())
    return ()



_FRONTED = re.compile(r"(?:^|[,;:]\s*)(under|in|at|from|with|on|for|by|into|to|during|through|"
                      r"within|since|until|of|as|about|after|before)\s+(?:which|what|whom)\b")
_GENERIC_HEADS = frozenset({"kind", "kinds", "type", "types", "sort", "sorts", "one", "ones"})


# A run of capitalised words (small joining words allowed inside): a name.
NAME_RUN = re.compile(r"[A-Z][\w&'-]*(?:\s+(?:(?:of|and|for|the)\s+)*[A-Z][\w&'-]*)*")


def _names(question: str) -> tuple[str, ...]:
    """Content-word stems of the names in a question; the capitalised first word alone
    ("Which", "How") is not a name, nor is a currency's ("US dollars")."""
    found = [m[0] for m in NAME_RUN.finditer(question)
             if (m.start() > 0 or " " in m[0])
             and not re.match(r"\s+dollars?\b", question[m.end():], re.IGNORECASE)]
    return tuple(dict.fromkeys(t for name in found for t in tokenize([name])[0]))


def _parse(question: str) -> tuple[QuestionToken, ...]:
    """The question's spaCy parse; empty when spaCy is unavailable."""
    try:
        from rag.reading.spans import parse_question

        return parse_question(question)
    except (ImportError, OSError):
        return ()


@lru_cache(maxsize=4096)
def _determined_noun(question: str) -> tuple[str, bool] | None:
    """(noun, plural) for the noun that 'which'/'what' determines, from spaCy's parse."""
    doc = _parse(question)
    for token in doc:
        if token.lower in ("which", "what") and token.dep == "det":
            noun = doc[token.head]
            if noun.pos in ("NOUN", "PROPN") and noun.lower not in _GENERIC_HEADS:
                return noun.lower, noun.tag in ("NNS", "NNPS")
    # "... meets which corridor?": the small parser may not attach a final which-phrase.
    tokens = [t for t in doc if not t.is_punct]
    for i, token in enumerate(tokens[:-2]):
        # "which two slogans describe ...": a number after which/what hides the noun from it.
        if token.lower in ("which", "what") and tokens[i + 1].pos == "NUM" and tokens[
                i + 2].pos in ("NOUN", "PROPN"):
            return tokens[i + 2].lower, tokens[i + 2].tag in ("NNS", "NNPS")
    for i, token in enumerate(tokens[:-1]):
        if token.lower in ("which", "what") and tokens[-1].pos in ("NOUN", "PROPN") and all(
            t.pos in ("NOUN", "PROPN", "ADJ") for t in tokens[i + 1 :]
        ):
            return tokens[-1].lower, tokens[-1].tag in ("NNS", "NNPS")
    return None
