"""A synthetic news corpus for benchmarks: seed sentences recombined with varied names,
places, figures and dates, deterministic for a given seed."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.documents import Document

SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"

# Pools the slots draw from. Mixed origins on purpose: BM25's vocabulary (and so its index
# size and latency) grows with the corpus the way a real news archive's does.
_GIVEN = (
    "Paul Kenny Grace Daniel Mei Ling Wei Ahmed Fatima Lucas Sofia Hiroshi Aiko Olivia Rajesh "
    "Priya Thomas Anna Carlos Elena Samuel Nadia Victor Irene Jonas Leila Marcus Chloe Omar "
    "Hannah Tariq Yuki Ben Clara Diego Amara Felix Ingrid Kwame Lena Mateo Noor Oscar Rosa "
    "Stefan Tanya Umar Vera Xavier Zara Ming Hui Jun Ka-ho Siu-ming Wing-yan"
).split()
_FAMILY = (
    "Chan Wong Lee Cheung Lau Ng Ho Leung Yip Tang Fung Kwok Shui Qin Sun Zhang Li Chen Nakamura "
    "Sato Kim Park Singh Patel Khan Haddad Okafor Mensah Silva Santos Garcia Rossi Bianchi "
    "Muller Schmidt Novak Dubois Laurent Jansen Berg Larsen Nielsen Kowalski Petrov Ivanova "
    "Yilmaz Demir Costa Moreau Fischer Romero Alvarez Tan Lim Goh Ong Nguyen Tran"
).split()
_CITIES = (
    "Singapore|Seoul|Taipei|Osaka|Macao|Shenzhen|Guangzhou|Hangzhou|Bangalore|Dubai|Abu Dhabi|"
    "Munich|Eindhoven|Grenoble|Dresden|Austin|Toronto|Melbourne|Helsinki|Tallinn|Kuala Lumpur|"
    "Penang|Hsinchu|Nagoya|Busan|Lyon|Barcelona|Leuven|Cambridge|Boston|Montreal|Auckland|Hong Kong"
).split("|")
_SITES = (
    "Harbour|Riverside|North Point|Lakeside|Hillcrest|Bayview|Eastgate|Westbrook|Sunrise|"
    "Greenfield|Stonebridge|Kingsway|Marina|Cedar|Silver Creek|Golden Bay|Pine Ridge"
).split("|")
_SITE_KIND = ("InnoPark", "Science Park", "Technology City", "Industrial Estate", "Tech Hub")
_FIELDS = (
    "semiconductor", "biotechnology", "battery", "quantum computing", "robotics", "photonics",
    "microelectronics", "new energy", "advanced materials", "aerospace", "medical devices",
    "data centre", "green hydrogen", "precision manufacturing", "fintech",
)
_FIELDS2 = ("artificial intelligence", "life sciences", "clean energy", "cybersecurity",
            "smart mobility", "digital health", "space technology", "agritech")
_UNIS = ("Lingnan University", "Harbour University", "the Institute of Science and Technology",
         "Metropolitan University", "the Polytechnic University", "Riverside College",
         "the University of Applied Sciences", "Eastern Normal University")
_OUTLETS = ("China Daily", "The Straits Times", "Nikkei Asia", "The Standard", "Global Times",
            "The Business Post", "Asia Tech Review", "The Morning Herald")
_REGIONS = ("Greater Bay Area", "Yangtze River Delta", "Pearl River corridor",
            "Rhine-Ruhr region", "Bay Area", "Nordic region", "ASEAN region")
_CURRENCIES = ("HK$", "S$", "RMB", "US$", "EUR", "A$", "NT$")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_HEADLINES = (
    "{city} earmarks {money} for national {field} centre",
    "{city} budget backs {field} research with {money}",
    "{p0} unveils {field} plan for {site}",
    "New {field} facility to rise at {site} in {city}",
    "{district} to anchor {city}'s push into {field2}",
    "Universities hail {city}'s {field} innovation hub",
    "{city} and {city2} deepen {field} cooperation",
    "{city} lowers threshold for industrial acceleration programme",
)

# Seed literals replaced by a slot (longest first so full names win over parts).
_LITERALS: tuple[tuple[str, str], ...] = (
    ("Hong Kong Special Administrative Region", "{city} Special Administrative Region"),
    ("Paul Chan Mo-po", "{p0}"), ("Kenny Shui", "{p1}"), ("Qin Sizhao", "{p2}"),
    ("Sun Dong", "{p3}"), ("ANDY CHONG", "{photog}"), ("Microelectronics", "{Field}"),
    ("Yuen Long InnoPark", "{site}"), ("Shenzhen Bay Port", "{port}"),
    ("Northern Metropolis Area", "{district}"), ("North Metropolis", "{district}"),
    ("Northern Metropolis", "{district}"), ("New Tian", "{site2}"), ("He Tao", "{site3}"),
    ("Sha Ling", "{site4}"), ("Lingnan University", "{uni}"), ("CHINA DAILY", "{OUTLET}"),
    ("China Daily", "{outlet}"), ("Greater Bay Area", "{region}"), ("Hong Kong", "{city}"),
    ("HKSAR", "{city}"), ("Shenzhen", "{city2}"), ("semiconductor", "{field}"),
    ("artificial intelligence", "{field2}"), ("Wednesday", "{weekday}"),
)
_SURNAMES = (("Chan", "{p0s}"), ("Qin", "{p2s}"), ("Sun", "{p3s}"))


def _split_sentences(text: str) -> list[str]:
    # A regex splitter is enough here: the templates only need to be whole sentences.
    out = []
    for para in re.split(r"\n\s*\n|\n", text):
        # Split after . ! ? (optionally closing a quote), never after a quoted comma.
        for s in re.split(r"(?:(?<=[.!?])|(?<=[.!?][\"”]))\s+(?=[A-Z\"“])", para.strip()):
            if len(s.split()) >= 6 and s.rstrip().endswith((".", '"', "”", ")")):
                out.append(s.strip())
    return out


def _templates(seeds_dir: Path) -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(seeds_dir.glob("*.txt"))]
    if not texts:
        raise FileNotFoundError(f"no seed articles (*.txt) in {seeds_dir}")
    templates = []
    for text in texts:
        for sentence in _split_sentences(text):
            s = sentence.replace("{", "(").replace("}", ")")
            for literal, slot in _LITERALS:
                s = s.replace(literal, slot)
            for name, slot in _SURNAMES:
                s = re.sub(rf"\b{name}\b(?! Mo-po)", slot, s)
            templates.append(s)
    return templates


def _person(rng: random.Random) -> tuple[str, str]:
    family = rng.choice(_FAMILY)
    return f"{rng.choice(_GIVEN)} {family}", family


def _money(rng: random.Random) -> str:
    amount = rng.choice((rng.randint(2, 950), round(rng.uniform(1, 99), 1)))
    unit = rng.choice(("million", "million", "billion"))
    return f"{rng.choice(_CURRENCIES)}{amount} {unit}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_Figures = list[tuple[re.Pattern[str], Callable[[], str]]]


def _figures(rng: random.Random, year: int) -> _Figures:
    """Regex → fresh value: every figure and date in a sentence is redrawn."""
    return [
        (re.compile(r"\(?HK\$\d+(?:\.\d+)? million \(\$\d+(?:\.\d+)? million\)\)?"),
         lambda: _money(rng)),
        (re.compile(r"\b\d+-hectare\b"), lambda: f"{rng.randint(3, 400)}-hectare"),
        (re.compile(r"\b\d+ hectares\b"), lambda: f"{rng.randint(2, 120)} hectares"),
        (re.compile(r"\b20\d\d-\d\d\b"), lambda: f"{year}-{(year + rng.randint(1, 4)) % 100:02d}"),
        (re.compile(r"\b20\d\d to 20\d\d\b"), lambda: f"{year} to {year + 1}"),
        (re.compile(r"\b(January|February|March|April|May|June|July|August|September|October|"
                    r"November|December) (\d{1,2}(st|nd|rd|th)|20\d\d)\b"),
         lambda: f"{rng.choice(_MONTHS)} "
         f"{rng.choice([_ordinal(rng.randint(1, 28)), str(year - 1)])}"),
        (re.compile(r"\b1\dth\b"), lambda: _ordinal(rng.randint(11, 16))),
        (re.compile(r"\bone to three years\b"),
         lambda: f"{rng.choice(('one', 'two', 'three'))} to "
         f"{rng.choice(('four', 'five', 'six'))} years"),
    ]


class _Redraw:
    """re.sub callback drawing a fresh value for every match."""

    def __init__(self, draw: Callable[[], str]) -> None:
        self.draw = draw

    def __call__(self, _match: re.Match[str]) -> str:
        return self.draw()


class SyntheticCorpus:
    """Generates news-like articles from the seed sentences; the same seed gives the same corpus."""

    def __init__(self, seed: int = 0, seeds_dir: Path | None = None) -> None:
        self.seed = seed
        self.templates = _templates(seeds_dir or SEEDS_DIR)

    def _cast(self, rng: random.Random) -> dict[str, str]:
        people = [_person(rng) for _ in range(4)]
        field = rng.choice(_FIELDS)
        outlet = rng.choice(_OUTLETS)
        city, city2 = rng.sample(_CITIES, 2)
        cast = {
            "city": city, "city2": city2, "region": rng.choice(_REGIONS),
            "field": field, "Field": field.title(), "field2": rng.choice(_FIELDS2),
            "site": f"{rng.choice(_SITES)} {rng.choice(_SITE_KIND)}",
            "site2": rng.choice(_SITES), "site3": rng.choice(_SITES), "site4": rng.choice(_SITES),
            "port": f"{rng.choice(_SITES)} Port", "district": f"{rng.choice(_SITES)} Metropolis",
            "uni": rng.choice(_UNIS), "outlet": outlet, "OUTLET": outlet.upper(),
            "weekday": rng.choice(_WEEKDAYS), "photog": _person(rng)[0].upper(),
        }
        for i, (full, family) in enumerate(people):
            cast[f"p{i}"], cast[f"p{i}s"] = full, family
        return cast

    def _sentence(self, template: str, cast: dict[str, str], figures: _Figures) -> str:
        text = template.format_map(cast)
        for pattern, draw in figures:
            if pattern.search(text):
                text = pattern.sub(_Redraw(draw), text)
        return text

    def document(self, i: int, *, max_words: int = 130) -> Document:
        """Article number `i`: a headline, a date and 3-8 paragraphs of ≤ max_words words."""
        rng = random.Random(f"{self.seed}:{i}")
        cast = self._cast(rng)
        published = dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(2400))
        figures = _figures(rng, published.year)
        title = rng.choice(_HEADLINES).format(money=_money(rng), **cast)
        paragraphs = []
        # Without replacement: a sentence appears at most once per article, as in real news.
        pool = rng.sample(range(len(self.templates)), len(self.templates))
        for _ in range(rng.randint(3, 8)):
            words = 0
            sentences: list[str] = []
            for _ in range(rng.randint(2, 5)):
                if not pool:
                    break
                t = pool.pop()
                s = self._sentence(self.templates[t], cast, figures)
                n = len(s.split())
                if sentences and words + n > max_words:
                    pool.insert(0, t)  # too long for this paragraph; may open a later one
                    break
                sentences.append(s)
                words += n
            if sentences:
                paragraphs.append(" ".join(sentences))
        header = f"date {published.isoformat()} {title}\n\n"
        text = header + "\n\n".join(paragraphs) + "\n"
        return Document(
            source=f"synth_{self.seed}_{i:07d}.txt", text=text, title=title,
            published=published.isoformat(), body_start=len(header),
        )

    def documents(self, n: int, start: int = 0) -> Iterator[Document]:
        """Articles start .. start+n-1."""
        for i in range(start, start + n):
            yield self.document(i)

    def paragraphs(self, n: int) -> list[str]:
        """`n` paragraph texts (about 60-170 word pieces each), for chunk-level benchmarks."""
        out: list[str] = []
        i = 0
        while len(out) < n:
            doc = self.document(i)
            out.extend(p for p in doc.text[doc.body_start:].split("\n\n") if p.strip())
            i += 1
        return [p.strip() for p in out[:n]]


def write_corpus(folder: Path, n_docs: int, seed: int = 0) -> list[Path]:
    """Write `n_docs` synthetic articles as .txt files into `folder` (for `rag index build`)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in SyntheticCorpus(seed).documents(n_docs):
        path = folder / doc.source
        path.write_text(doc.text, encoding="utf-8")
        paths.append(path)
    return paths
