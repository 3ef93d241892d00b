"""Expected-answer-type classification and candidate spans."""

from __future__ import annotations

import pytest

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
    REASON,
    analyse,
)
from rag.reading.rules import (
    _IDENTITY,
    ScoredSentence,
    _appositive_of,
    _dates_a_name,
    _holds_another_post,
    _is_title,
    _list_items,
    _list_of,
    _lower_case_scheme,
    _named,
    _naming,
    _other_kind_of_name,
    _proper,
    _states_date_parts,
)
from rag.reading.spans import Candidate, candidates, clear_cache, lemmas, prepare
from rag.retrieval import Hit


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How much will the city spend on the new bridge?", MONEY),
        ("What is the cost of the stadium?", MONEY),
        ("What percentage of voters backed the plan?", PERCENT),
        ("How long will the review take?", DURATION),
        ("How big is the new park?", QUANTITY),
        ("How many nurses were hired?", COUNT),
        ("When did the minister resign?", DATE),
        ("In what year was the law passed?", DATE),
        ("Where will the museum be built?", PLACE),
        ("Which university runs the lab?", ORG),
        ("Who chairs the committee?", PERSON),
        ("Which legislator moved the motion?", PERSON),
        ("Which photographer took the picture?", PERSON),
        ("What is the name of the new scheme?", NAME),
        ("What is the slogan of the campaign?", NAME),
        ("In which government spending plan was the money announced?", NAME),  # not ORG
        ("Which city council building will be torn down?", PLACE),
        ("Why did the mayor cancel the project?", REASON),
        ("What will the agency focus on?", PHRASE),
    ],
)
def test_expected_answer_type(question: str, expected: str) -> None:
    assert analyse(question).types[0] == expected


def test_content_terms_are_stemmed_and_normalise_british_spelling() -> None:
    info = analyse("Where is the centre's organisation based?")
    assert "center" in info.terms
    assert any(t.startswith("organ") for t in info.terms)
    assert "where" not in info.terms


def test_counted_noun_is_extracted() -> None:
    assert analyse("How many bids were received?").unit == "bid"


@pytest.mark.parametrize(
    ("sentence", "span", "kind"),
    [
        ("The city will earmark about HK$220 million for it.", "about HK$220 million", MONEY),
        ("The review is expected to take one to three years.", "one to three years", DURATION),
        ("It sits on a 67-hectare estate.", "67-hectare", QUANTITY),
        ("A tender covered about 10 hectares of land.", "about 10 hectares", QUANTITY),
        ("Growth reached 3.5 per cent last year.", "3.5 per cent", PERCENT),
        ('They launched the "Green Roof Fund" in May.', "Green Roof Fund", NAME),
        ("The fund opens in the 2026 to 2027 financial year.", "2026 to 2027 financial year",
         DATE),
    ],
)
def test_candidate_spans_cover_news_shapes(sentence: str, span: str, kind: str) -> None:
    found = {c.text: c.kinds for c in candidates(sentence, 0, len(sentence))}
    # A leading "the" is fine: answer scoring drops articles (SQuAD normalisation).
    key = span if span in found else f"the {span}"
    assert key in found, sorted(found)
    assert kind in found[key]


def test_candidates_have_exact_document_offsets() -> None:
    text = "Intro sentence. The city will earmark about HK$220 million for it."
    start = text.index("The")
    for c in candidates(text, start, len(text)):
        assert text[c.start : c.end] == c.text


def test_fragments_with_dangling_words_are_not_candidates() -> None:
    sentence = "Kenny Shui, vice-president of think tank Our Hong Kong Foundation, spoke."
    texts = {c.text for c in candidates(sentence, 0, len(sentence))}
    assert not any(t.endswith(" of") or t.startswith("of ") for t in texts)


@pytest.mark.parametrize(("question", "head"), [
    ("Which bridge did the mayor open?", "bridg"),
    ("Which think tank does she work for?", "tank"),
    ("What kind of new port will be built?", "port"),
    ("Which two hospitals were merged?", "hospit"),
    ("In which coastal province is the plant?", "provinc"),
    ("What years does the plan span?", "year"),
    ("What is the capital of France?", None),
    ("Who opened the bridge?", None),
    # No auxiliary after the phrase: the parse finds the noun which/what determines.
    ("Which programme pays for new machines?", "program"),
    ("Which authority across the border approved it?", "author"),
    ("The new road meets which highway?", "highway"),
])
def test_the_asked_for_noun_is_the_last_word_before_the_verb(question: str,
                                                             head: str | None) -> None:
    assert analyse(question).head == head


@pytest.mark.parametrize(("question", "several"), [
    ("Which two districts will get new stations?", 2),
    ("What three aims did officials give?", 3),
    ("Which resources should move freely?", 2),
    ("What kinds of facilities could industries set up?", 2),
    ("Which two fields of technology will it watch?", 2),
    ("Which two slogans describe the zone?", 2),  # no auxiliary after the phrase
    ("Which river does the zone straddle?", 0),
    ("Which bus does she take?", 0),
    ("What is the capital of France?", 0),
])
def test_questions_asking_for_several_things(question: str, several: int) -> None:
    assert analyse(question).several == several


@pytest.mark.parametrize(("question", "kind"), [
    ("What is the size of the industrial estate?", "QUANTITY"),
    ("What is the total spending in the budget?", "MONEY"),
    ("What is the grant worth in US dollars?", "MONEY"),
    ("What is the annual budget of the museum?", "MONEY"),
    ("What will the estimated cost be?", "MONEY"),
    ("What is the budget speech about?", "PHRASE"),  # "budget" names the speech
    ("What will the new company be called?", "ORG"),  # a company's name
    ("What will the new fund be called?", "NAME"),
    ("What was the bridge named after?", "PHRASE"),  # a person or thing, not a name
    ("What period does the plan cover?", "DURATION"),
])
def test_amount_questions_without_how_are_typed(question: str, kind: str) -> None:
    assert analyse(question).types[0] == kind


def test_spans_know_the_words_that_govern_them() -> None:
    sentence = ("The library reopened on Tuesday after repairs that began in March last year. "
                "It leased the upper floor for the creation of a reading room.")
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    began = sentence.index("began")
    assert began in by_text["March last year"].governors  # the preposition is climbed over
    assert began not in by_text["Tuesday"].governors
    assert by_text["the creation of a reading room"].preposition == "for"
    assert lemmas(sentence)[began] == "begin"


def test_batched_and_single_sentence_analyses_agree() -> None:
    sentences = ["The pier cost about HK$95 million and opened on Thursday.",
                 "Volunteers collected plastic bottles, fishing nets and polystyrene boxes."]
    clear_cache()
    single = [candidates(s, 0, len(s)) for s in sentences]
    clear_cache()
    prepare(sentences)
    assert [candidates(s, 0, len(s)) for s in sentences] == single


def test_a_capitalised_run_ending_in_an_organisation_noun_is_an_organisation() -> None:
    sentence = "Kenny Shui, vice-president of think tank Our Hong Kong Foundation, said so."
    orgs = {c.text for c in candidates(sentence, 0, len(sentence)) if ORG in c.kinds}
    assert "Our Hong Kong Foundation" in orgs
    assert "Hong Kong Foundation" not in orgs  # the outermost name only


@pytest.mark.parametrize(("question", "parts"), [
    ("In what month and year was the pact signed?", {"month", "year"}),
    ("Which year will the bridge open?", {"year"}),
    ("On what weekday was the budget released?", {"day"}),
    ("When did the minister resign?", set()),
    ("In what year's budget was the money set aside?", set()),  # a year qualifies the budget
])
def test_questions_say_which_parts_of_a_date_they_want(question: str, parts: set[str]) -> None:
    assert analyse(question).date_parts == parts


@pytest.mark.parametrize(("question", "currency"), [
    ("What is the grant worth in US dollars?", "USD"),
    ("How much is the fund in Hong Kong dollars?", "HKD"),
    ("How many yuan will the city invest?", "CNY"),
    ("How much will the bridge cost?", None),
])
def test_questions_name_the_currency_they_want(question: str, currency: str | None) -> None:
    assert analyse(question).currency == currency


def test_a_how_described_question_asks_for_the_complement() -> None:
    assert analyse("How did the professor describe the decision?").stranded == "as"
    assert analyse("What did the lawmakers call the plan?").stranded is None
    sentence = ("The professor described the decision as long overdue, and critics called "
                "the plan reckless.")
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    assert by_text["long overdue"].preposition == "as"  # without its "as"
    assert by_text["reckless"].preposition == "as"  # "called the plan [as] reckless"


def test_a_plain_phrase_inside_a_date_is_not_a_candidate_of_its_own() -> None:
    sentence = "The land was tendered in the fourth quarter of last year for data centres."
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    assert DATE in by_text["the fourth quarter of last year"].kinds
    assert "the fourth quarter" not in by_text
    assert by_text["data centres"].kinds == {PHRASE}


def test_quoted_names_listed_together_are_one_candidate_and_each_their_own() -> None:
    sentence = 'It works under "One River, Two Banks" and "One Zone, Two Parks" with Shenzhen.'
    names = {c.text for c in candidates(sentence, 0, len(sentence)) if NAME in c.kinds}
    assert {'"One River, Two Banks" and "One Zone, Two Parks"', "One River, Two Banks",
            "One Zone, Two Parks"} <= names
    assert analyse("Which two slogans describe the zone?").counted
    assert not analyse("Which slogans describe the zone?").counted


def test_what_will_it_do_asks_for_a_verb_phrase_and_predicates_are_candidates() -> None:
    assert analyse("What will the board do with the old pipes?").action
    assert not analyse("What kind of research will the centre do?").action  # asks for a noun
    assert not analyse("What does the report say?").action  # "does" is an auxiliary
    sentence = "The department will recycle the old pipes, a spokesman said."
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    assert by_text["recycle the old pipes"].verbal  # without its subject and "will"
    assert not by_text["the old pipes"].verbal
    assert analyse("What can top talent use the city as?").stranded == "as"


def test_a_name_cut_before_a_capitalised_word_is_dropped_and_numbers_lead_a_full_name() -> None:
    sentence = ("Hong Kong Financial Secretary Paul Chan Mo-po said it is in the 2026-27 Budget "
                "released on Wednesday.")
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    assert "Hong Kong Financial" not in by_text or not by_text["Hong Kong Financial"].kinds & {
        ORG, PERSON, PLACE, NAME}
    assert PERSON in by_text["Paul Chan Mo-po"].kinds
    assert NAME in by_text["the 2026-27 Budget"].kinds


def test_a_name_shaped_like_a_place_is_a_place_not_a_person() -> None:
    sentence = "The lab will be built at Yuen Long InnoPark, near Shenzhen Bay Port."
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    assert PLACE in by_text["Yuen Long InnoPark"].kinds
    assert PERSON not in by_text["Yuen Long InnoPark"].kinds
    assert PLACE in by_text["Shenzhen Bay Port"].kinds


@pytest.mark.parametrize(("question", "preposition"), [
    ("Under which principle is the city governed?", "under"),
    ("In what month and year was the deal signed?", "in"),
    ("Once built, from which port will the ships sail?", "from"),
    ("Which river does the zone straddle?", None),
    ("What is the floor leased for?", "for"),  # stranded at the end, as before
    ("Which legislator moved the motion that she spoke on?", None),  # the clause's own
])
def test_a_preposition_put_before_which_or_what_is_the_answers_preposition(
        question: str, preposition: str | None) -> None:
    assert analyse(question).stranded == preposition


def test_a_quotation_inside_a_quotation_is_a_name_and_a_long_one_only_in_title_case() -> None:
    sentence = ("\"Under 'one country, two systems', Hong Kong's students' union is in the best "
                "position to attract talent from all over the world,\" he said of the "
                "\"Cooperation Agreement on Promoting New Productivity and Advancing New "
                "Industrialization\".")
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    assert NAME in by_text["one country, two systems"].kinds
    assert by_text["one country, two systems"].preposition == "under"
    assert NAME in by_text["Cooperation Agreement on Promoting New Productivity and Advancing "
                           "New Industrialization"].kinds
    # Reported speech is not a name, and an apostrophe never opens a quotation.
    assert not any(NAME in c.kinds for c in by_text.values() if "talent" in c.text)
    assert not any(c.text.startswith("s students") for c in by_text.values())


@pytest.mark.parametrize(("question", "span", "named"), [
    # A generic organisation noun accepts any organisation's name ...
    ("Which authority is Hong Kong working with?", "the Shenzhen municipal government", True),
    # ... but "institute" is not "institution", though the two share a stem.
    ("Which institute will run the centre?", "Our Hong Kong Foundation", False),
    ("Which institute will run the centre?", "the Hong Kong Microelectronics Institute", True),
    # Lower-case words inside a name end it: this is a phrase that ends in one.
    ("Which institute does he direct?",
     "Our Hong Kong Foundation and executive director of its Public Policy Institute", False),
    # A possessive before a name is its determiner.
    ("Which national plan sets the tone?", "the country's 15th Five-Year Plan", True),
])
def test_a_name_of_the_asked_for_thing_is_capitalised_up_to_its_description(
        question: str, span: str, named: bool) -> None:
    assert _naming(analyse(question), span)[1] is named


def test_a_scheme_named_in_lower_case_is_a_candidate_and_answers_which_programme() -> None:
    sentence = ("The council will roll out the green shipping subsidy scheme this year, "
                "beside the Harbour Upgrade Program.")
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    scheme = by_text["green shipping subsidy scheme"]
    assert _lower_case_scheme(analyse("Which programme will the council roll out?"), scheme)
    assert not _lower_case_scheme(analyse("Which company will the council hire?"), scheme)
    assert not _lower_case_scheme(analyse("Which programme is it?"), by_text["this year"])


@pytest.mark.parametrize(("question", "post"), [
    ("What post does Sun Dong hold in the government?", True),
    ("What position does she hold at the foundation?", True),
    ("What is his job title?", True),
    ("What role does the city play in the strategy?", False),  # a function, not a post
    ("Which office handles the tender?", False),
])
def test_questions_asking_for_a_post(question: str, post: bool) -> None:
    assert analyse(question).post is post


@pytest.mark.parametrize(("span", "title"), [
    ("the Secretary for Innovation and Technology", True),
    ("executive director of its Public Policy Institute", True),
    ("vice-president", True),
    ("the Legislative Council meeting", False),  # "legislative" is not "legislator"
    ("Our Hong Kong Foundation", False),
])
def test_a_post_is_led_by_a_title_word(span: str, title: bool) -> None:
    assert _is_title(span) is title


def test_a_candidate_never_starts_or_ends_inside_a_hyphenated_word() -> None:
    sentence = "Kenny Shui, vice-president of the think tank, spoke on Monday."
    texts = {c.text for c in candidates(sentence, 0, len(sentence))}
    assert "president" not in texts and "vice" not in texts


def test_a_plain_phrase_across_a_names_edge_is_a_fragment() -> None:
    sentence = ("The city will roll out the new industrialization elite enterprises nurturing "
                "scheme this year, supporting targeted high-growth enterprises.")
    texts = {c.text for c in candidates(sentence, 0, len(sentence))}
    assert "new industrialization elite enterprises nurturing scheme" in texts
    assert not any(t.startswith("nurturing scheme") or t.startswith("scheme this") for t in texts)
    assert "targeted high-growth enterprises" in texts


def test_and_inside_a_name_joins_no_list_and_a_plural_place_noun_asks_for_places() -> None:
    sentence = ("The He Tao Hong Kong Park and the New Tian Science and Technology City "
                "provide land, and \"One River, Two Banks\" and \"One Zone, Two Parks\" guide it.")
    spans = candidates(sentence, 0, len(sentence))
    by_text = {c.text: c for c in spans}
    assert _list_items(by_text["the New Tian Science and Technology City"], spans) == 1
    assert _list_items(by_text["The He Tao Hong Kong Park and the New Tian Science and "
                               "Technology City"], spans) == 2
    assert _list_items(by_text['"One River, Two Banks" and "One Zone, Two Parks"'], spans) == 2
    assert _proper("The He Tao Hong Kong Park") and not _proper("the new land")
    assert analyse("Which two places are supplying the land?").types[0] == PLACE


def test_the_words_describing_the_asked_for_thing() -> None:
    info = analyse("What investment-attraction approach is Hong Kong stepping up?")
    assert {"invest", "attract"} <= set(info.described)
    # After "of" come the thing's domain, not its description: the answer may repeat it
    # ("semiconductor-related research") but need not ("artificial intelligence and health").
    info = analyse("Which two fields of international technology will the centre track?")
    assert "technolog" not in info.described and "technolog" in info.heads


def test_a_list_of_names_is_mostly_names() -> None:
    sentence = ("The He Tao Hong Kong Park and the New Tian Science and Technology City provide "
                "land, leveraging the advantages of cooperation between Hong Kong and Shenzhen.")
    spans = candidates(sentence, 0, len(sentence))
    by_text = {c.text: c for c in spans}
    places = analyse("Which two places provide the land?")
    assert _list_of(places, by_text["The He Tao Hong Kong Park and the New Tian Science and "
                                    "Technology City"], spans)
    assert not _list_of(places, by_text["the advantages of cooperation between Hong Kong and "
                                        "Shenzhen"], spans)


def test_a_span_beside_a_name_the_question_says_is_that_name() -> None:
    sentence = "Professor Sun Dong, the Secretary for Innovation, spoke to the Legislative Council."
    start = sentence.index("the Secretary")
    end = sentence.index(", spoke")
    assert _appositive_of(sentence, start, end, {"sun", "dong"})
    assert not _appositive_of(sentence, start, end, {"legisl"})
    assert analyse("What is Sun Dong's job title?").post
    assert not analyse("What is the position of the city on tariffs?").post


@pytest.mark.parametrize(("question", "names"), [
    ("How many hectares does the New Tian Science and Technology City cover?",
     {"new", "tian", "scienc", "technolog", "citi"}),
    ("Sun Dong said what about the plan?", {"sun", "dong"}),
    ("Which river does it straddle?", set()),  # a capitalised first word is no name
])
def test_the_names_a_question_says(question: str, names: set[str]) -> None:
    assert set(analyse(question).names) == names


def test_a_currency_is_not_a_name_and_an_acronym_is_said_by_its_words() -> None:
    assert analyse("What is the grant worth in US dollars?").names == ()
    info = analyse("How much is the SAR government setting aside?")
    text = "The Hong Kong Special Administrative Region government will earmark HK$1 billion."
    hit = Hit(id=1, chunk_id="a#0", source="a.txt", start=0, end=len(text), text=text,
              title=None, published=None, score=1.0)
    assert _named(info, ScoredSentence(hit, 0, len(text), 1.0, 1.0, 1.0)) == 1.0
    other = "Shenzhen will earmark HK$2 billion."
    hit = Hit(id=2, chunk_id="b#0", source="b.txt", start=0, end=len(other), text=other,
              title=None, published=None, score=1.0)
    assert _named(info, ScoredSentence(hit, 0, len(other), 1.0, 1.0, 1.0)) == 0.0


def test_a_name_is_said_by_its_acronym() -> None:
    info = analyse("Why is the Hong Kong government speeding up its drive?")
    text = "The HKSAR government is accelerating its drive."
    hit = Hit(id=1, chunk_id="a#0", source="a.txt", start=0, end=len(text), text=text,
              title=None, published=None, score=1.0)
    assert _named(info, ScoredSentence(hit, 0, len(text), 1.0, 1.0, 1.0)) == 1.0
    other = "The MTR is accelerating its drive."  # initials of other words: not said
    hit = Hit(id=2, chunk_id="b#0", source="b.txt", start=0, end=len(other), text=other,
              title=None, published=None, score=1.0)
    assert _named(info, ScoredSentence(hit, 0, len(other), 1.0, 1.0, 1.0)) == 0.0


def test_a_day_of_the_month_with_an_ordinal_states_the_day() -> None:
    assert _states_date_parts("February 4th", frozenset({"day"}))
    assert _states_date_parts("the 4th of February", frozenset({"day"}))
    assert not _states_date_parts("February", frozenset({"day"}))


def test_a_place_or_an_organisation_is_not_the_person_or_company_asked_for() -> None:
    sentence = ("The Hong Kong SAR government and the Legislative Council met Qin Sizhao in "
                "Shenzhen.")
    by_text = {c.text: c for c in candidates(sentence, 0, len(sentence))}
    legislator = analyse("Which legislator moved the motion?")
    company = analyse("Which company won the tender?")
    government = analyse("Which government ran the tender?")
    who = analyse("Who ran the tender?")
    assert _other_kind_of_name(legislator, by_text["Shenzhen"])
    assert _other_kind_of_name(legislator, by_text["the Legislative Council"])
    assert not _other_kind_of_name(legislator, by_text["Qin Sizhao"])
    assert _other_kind_of_name(company, by_text["Shenzhen"])
    assert not _other_kind_of_name(government, by_text["Shenzhen"])  # a city's government
    assert not _other_kind_of_name(who, by_text["Shenzhen"])
    whom = analyse("Whom did the council hire?")
    assert not _other_kind_of_name(whom, by_text["the Legislative Council"])

    def org(text: str) -> Candidate:
        return Candidate(0, len(text), text, frozenset({ORG, NAME}))

    bureau = org("The Innovation and Technology Bureau")
    assert _other_kind_of_name(company, bureau)
    assert not _other_kind_of_name(company, org("Harbour Leisure Limited"))
    assert _other_kind_of_name(company, org("the New Tian Science and Technology City"))
    assert _other_kind_of_name(analyse("Which university runs the lab?"), bureau)
    assert not _other_kind_of_name(analyse("Which organisation runs the lab?"), bureau)
    assert not _other_kind_of_name(analyse("Which think tank runs the lab?"), bureau)
    # A name's head comes before its "of"; a document is neither a company nor a person.
    outline = org("Conceptual Outline of the Development Plan of the New Tian Industry")
    assert _other_kind_of_name(company, outline)
    assert _other_kind_of_name(analyse("Who wrote the motion?"), outline)
    assert not _other_kind_of_name(analyse("Which plan sets the goals?"), outline)
    ministry = org("the Ministry of Industry and Information Technology")
    assert _other_kind_of_name(company, ministry)  # a government's, by "Ministry"
    assert not _other_kind_of_name(company, org("the Bank of East Asia"))


@pytest.mark.parametrize(
    ("question", "head", "kind"),
    [
        ("What will the dedicated company for developing New Tian be called?", "compani", ORG),
        ("What will the company running the sports centre be called?", "compani", ORG),
        ("What will the new sports stadium be named?", "stadium", NAME),
        ("What will it be called?", None, NAME),
    ],
)
def test_what_will_it_be_called_asks_for_the_name_of_its_subject(
        question: str, head: str | None, kind: str) -> None:
    info = analyse(question)
    assert (info.head, info.types[0]) == (head, kind)
    # A company's name is an organisation's: "... Bureau" is not it (it is a government's).
    bureau = Candidate(0, 36, "The Innovation and Technology Bureau", frozenset({ORG, NAME}))
    assert _other_kind_of_name(info, bureau) is (head == "compani")


def test_a_date_naming_something_the_question_does_not_say_is_not_its_date() -> None:
    finished = analyse("When will the museum be finished?")
    assert _dates_a_name(finished, " Budget released on Monday")  # "the [2026-27] Budget"
    assert not _dates_a_name(analyse("When is the Budget for the museum?"), " Budget")
    assert not _dates_a_name(finished, " September")  # "2024 September" goes on as a date
    assert not _dates_a_name(finished, ", the department said")
    assert not _dates_a_name(finished, " Monday")


@pytest.mark.parametrize(
    ("question", "identity"),
    [("Who is Kenny Shui?", True), ("who was Professor Sun Dong?", True),
     ("Who is the chief executive of the institute?", False),
     ("Who chairs the foundation?", False)],
)
def test_only_who_is_somebody_may_be_answered_by_a_post(question: str, identity: bool) -> None:
    assert bool(_IDENTITY.match(question)) is identity


@pytest.mark.parametrize(
    ("question", "role"),
    [("Who chairs the Our Hong Kong Foundation?", ("chair",)),
     ("Who heads Lingnan University?", ("head",)),
     ("Who is the chief executive of the institute?", ("chief", "executive")),
     ("Who is Kenny Shui?", ()), ("Who wrote the report?", ()),
     ("Who is behind the photograph?", ())],
)
def test_a_who_question_may_ask_for_the_holder_of_a_post(
        question: str, role: tuple[str, ...]) -> None:
    info = analyse(question)
    assert info.role == role
    if role:
        assert info.types == (PERSON,)  # an organisation holds no post


def test_a_person_said_to_hold_another_post_is_not_the_holder_asked_for() -> None:
    sentence = ("Kenny Shui, vice-president of think tank Our Hong Kong Foundation, and Qin "
                "Sizhao, president of Lingnan University, spoke.")
    kenny, qin = (sentence.index(n) for n in ("Kenny Shui", "Qin Sizhao"))

    def other(question: str, start: int, name: str) -> bool:
        return _holds_another_post(analyse(question), sentence, start, start + len(name))

    assert other("Who chairs the Our Hong Kong Foundation?", kenny, "Kenny Shui")
    assert other("Who heads the Our Hong Kong Foundation?", kenny, "Kenny Shui")  # a vice-
    assert not other("Who heads Lingnan University?", qin, "Qin Sizhao")
    assert other("Who heads the Microelectronics Institute?", qin, "Qin Sizhao")  # elsewhere
    assert not other("Who is the president of Lingnan University?", qin, "Qin Sizhao")
    # Two posts, each of its own organisation: he is executive director of the institute.
    both = ("Kenny Shui, vice-president of think tank Our Hong Kong Foundation and executive "
            "director of its Public Policy Institute, said it.")
    assert _holds_another_post(analyse("Who heads the Our Hong Kong Foundation?"), both, 0, 10)
    assert not _holds_another_post(
        analyse("Who is the executive director of the Public Policy Institute?"), both, 0, 10)
    # No post said: the sentence does not rule the person out.
    assert not _holds_another_post(analyse("Who chairs the board?"), "Ada Lam spoke.", 0, 7)


def test_a_photo_credit_names_the_photographer_and_only_photo_questions_ask_for_it() -> None:
    sentence = "Paul Chan (second from left) greets lawmakers. (ANDY CHONG/CHINA DAILY)"
    by_text = {c.text: c.kinds for c in candidates(sentence, 0, len(sentence))}
    assert PERSON in by_text["ANDY CHONG"]
    assert not any("second from" in t for t in by_text)
    assert analyse("Who took the photograph accompanying the story?").credit
    assert analyse("Whose photo illustrates the story?").credit
    assert not analyse("Who took part in the meeting?").credit
    assert not analyse("Who is shown in the photo?").credit


@pytest.mark.parametrize(
    ("question", "sentence", "stated"),
    [("What is the total spending in the budget?", "It will earmark HK$220 million.", False),
     ("What is the total spending in the budget?", "Spending totals HK$700 billion.", True),
     ("What is the annual budget of the museum?", "It costs HK$40 million a year.", True),
     ("What is the annual budget of the museum?", "It will cost HK$500 million.", False),
     ("How much will the museum cost?", "It will cost HK$500 million.", True)],
)
def test_an_amount_must_be_what_the_question_qualifies_it_as(
        question: str, sentence: str, stated: bool) -> None:
    info = analyse(question)
    assert all(said.search(sentence) for said in info.qualifiers) is stated
