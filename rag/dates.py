"""Dates written in article headers: find them and read them, through python-dateutil.

Regular expressions only *locate* a date (a day, a month and a year all written out);
dateutil reads it, with the day-first rule given explicitly. Nothing here guesses a
date from a bare number or from a month without a day, and years outside
`YEAR_MIN`..`YEAR_MAX` are refused: a news article dated 1900 or 2300 is a misreading.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from dateutil import parser as _dateutil

YEAR_MIN, YEAR_MAX = 1990, 2100

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])\.?"
)
_ORDINAL = r"(?:st|nd|rd|th)?"
_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?(?:Z|[+-]\d{2}(?::?\d{2})?))?)?"
# (kind, pattern): each pattern needs a day, a month and a year, so no date is half-guessed.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iso", re.compile(rf"(?<![\d/.-])(\d{{4}})-(\d{{1,2}})-(\d{{1,2}}){_TIME}(?![\d-])")),
    ("ymd", re.compile(r"(?<![\d/.-])(\d{4})([/.])(\d{1,2})\2(\d{1,2})(?![\d/.]?\d)")),
    ("dmy", re.compile(r"(?<![\d/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?![\d/.-]?\d)")),
    (
        "words",
        re.compile(
            rf"(?<![\d\w])\d{{1,2}}{_ORDINAL}(?:\s+of\s+|[\s-]+){_MONTH}[\s,-]*\d{{4}}(?!\d)"
            rf"|\b{_MONTH}\s*\d{{1,2}}{_ORDINAL},?\s+\d{{4}}(?!\d)",
            re.IGNORECASE,
        ),
    ),
    ("cjk", re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")),
)
# Words and marks that may stand next to a date on a date-only line: a weekday, a time,
# a time zone, "at"/"on", separators ("Wed, 25 Feb 2026 08:30:00 +0800", "16:30 04/02/2026").
_WEEKDAYS = {
    "mon", "monday", "tue", "tues", "tuesday", "wed", "weds", "wednesday", "thu", "thur",
    "thurs", "thursday", "fri", "friday", "sat", "saturday", "sun", "sunday",
}
_FILLER_WORDS = _WEEKDAYS | {"am", "pm", "a", "p", "m", "at", "on", "utc", "gmt", "z"}
_OFFSET_RE = re.compile(r"[+-]\d{1,2}(?::?\d{2})?")
_CLOCK_RE = re.compile(r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\.\d+)?")
_FILLER_TOKEN_RE = re.compile(rf"{_OFFSET_RE.pattern}|{_CLOCK_RE.pattern}|[A-Za-z]+|\d+|\S")
_PUNCT = set(",;|·•()[]-–—/.:")
_MENTION_RE = re.compile(rf"\b({_MONTH})\s+(\d{{1,2}}){_ORDINAL}\b", re.IGNORECASE)
_ISO_SHAPE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
# Two different defaults: a field the text leaves out would come out differently.
_DEFAULTS = (dt.datetime(1901, 1, 1), dt.datetime(1902, 2, 2))


@dataclass(frozen=True)
class DateMatch:
    """A date found in a string, with the span of the text that wrote it."""

    date: dt.date
    start: int
    end: int
    ambiguous: bool = False  # a numeric day/month that could be read either way


class _Unreadable(ValueError):
    """A located date that is not a real one (month 13, 30 February, year 1890)."""


def _dateutil_date(text: str, *, dayfirst: bool, yearfirst: bool) -> dt.date:
    results = set()
    for default in _DEFAULTS:
        try:
            stamp = _dateutil.parse(
                text, default=default, dayfirst=dayfirst, yearfirst=yearfirst, ignoretz=True
            )
        except (ValueError, OverflowError) as exc:
            raise _Unreadable(str(exc).split(":")[0]) from None
        results.add(stamp.date())
    if len(results) != 1:
        raise _Unreadable("the day, the month or the year is missing")
    return results.pop()


def _mentioned(context: str) -> set[tuple[int, int]]:
    """(month, day) pairs the text names in words, e.g. "On February 4th"."""
    found = set()
    for month_word, day in _MENTION_RE.findall(context[:2000]):
        try:
            month = _dateutil.parse(f"1 {month_word} 2000").month
        except (ValueError, OverflowError):
            continue
        found.add((month, int(day)))
    return found


def _read(kind: str, match: re.Match[str], context: str) -> tuple[dt.date, bool]:
    text = match[0]
    if kind == "cjk":
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3])), False
        except ValueError as exc:
            raise _Unreadable(str(exc)) from None
    if kind in {"iso", "ymd"}:
        return _dateutil_date(text, dayfirst=False, yearfirst=True), False
    if kind == "dmy":
        a, b = int(match[1]), int(match[3])
        both = a != b and a <= 12 and b <= 12
        dayfirst = True  # the convention of the outlets we ingest (HK, UK, EU)
        if both and (a, b) in _mentioned(context) and (b, a) not in _mentioned(context):
            # "04/02/2026" above "On April 2nd": the text names the day, so it decides.
            dayfirst = False
        return _dateutil_date(text, dayfirst=dayfirst, yearfirst=False), both
    return _dateutil_date(text, dayfirst=True, yearfirst=False), False


def _candidates(value: str) -> Iterator[tuple[str, re.Match[str]]]:
    found = [(m.start(), -len(m[0]), kind, m) for kind, p in _PATTERNS for m in p.finditer(value)]
    for _, _, kind, match in sorted(found, key=lambda f: (f[0], f[1])):
        yield kind, match


def _in_range(date: dt.date) -> bool:
    return YEAR_MIN <= date.year <= YEAR_MAX


def find_date(value: str, context: str = "") -> DateMatch | None:
    """The first real date written in `value` (numeric day/month ambiguity: see `parse_date`)."""
    for kind, match in _candidates(value):
        try:
            date, ambiguous = _read(kind, match, context)
        except _Unreadable:
            continue
        if _in_range(date):
            return DateMatch(date, match.start(), match.end(), ambiguous)
    return None


def parse_date(value: str, context: str = "") -> dt.date | None:
    """Find a calendar date in `value`; numeric d/m ambiguity is settled from `context`.

    "04/02/2026" could be 4 February or April 2. News text usually names the day
    ("On February 4th"), so a month-and-day mention in the context decides; without
    one, day-first wins (the convention of the outlets we ingest: HK, UK, EU).
    """
    found = find_date(value, context)
    return found.date if found else None


def only_filler(text: str) -> bool:
    """True if `text` holds nothing but a weekday, a time, a zone or separators."""
    for token in _FILLER_TOKEN_RE.findall(text):
        if token in _PUNCT or _OFFSET_RE.fullmatch(token) or _CLOCK_RE.fullmatch(token):
            continue
        if token[0].isdigit():
            return False  # a stray number: "25 Feb 2026 3" is not a date line
        low = token.lower()
        # Zone abbreviations (HKT, BST, CEST) are written in capitals; "best" is a word.
        if low not in _FILLER_WORDS and not (token.isupper() and 2 <= len(token) <= 5):
            return False
    return True


def whole_date(value: str, context: str = "") -> DateMatch | None:
    """The date `value` consists of (give or take a weekday, a time and a zone), else None."""
    found = find_date(value, context)
    if found is None:
        return None
    if only_filler(value[: found.start]) and only_filler(value[found.end :]):
        return found
    return None


def read_date(value: str) -> dt.date:
    """Read a date a person typed (an override): the whole value, unambiguous, or ValueError.

    The error's message says what is wrong ("month 13 is not between 1 and 12").
    """
    text = value.strip()
    if not text:
        raise ValueError("it is empty")
    if text.isdigit():
        raise ValueError("a bare number is not a date")
    if shape := _ISO_SHAPE_RE.fullmatch(text):
        year, month, day = (int(part) for part in shape.groups())
        if not 1 <= month <= 12:
            raise ValueError(f"month {month} is not between 1 and 12")
        last = calendar.monthrange(year, month)[1] if 1 <= year <= 9999 else 31
        if not 1 <= day <= last:
            raise ValueError(
                f"day {day} is not in {calendar.month_name[month]} {year}, "
                f"which has {last} days"
            )
    for kind, match in _candidates(text):
        if not (only_filler(text[: match.start()]) and only_filler(text[match.end() :])):
            continue
        try:
            date, ambiguous = _read(kind, match, "")
        except _Unreadable as exc:
            raise ValueError(f"{match[0]!r} is not a real date ({exc})") from None
        if ambiguous:
            raise ValueError(
                f"{match[0]!r} could be day-month or month-day "
                f"({_spoken(date)} or {_spoken(_swap(date))})"
            )
        if not _in_range(date):
            raise ValueError(f"year {date.year} is outside {YEAR_MIN}-{YEAR_MAX}")
        return date
    raise ValueError("it is not a date I can read")


def _spoken(date: dt.date) -> str:
    return f"{date.day} {date:%B %Y}"


def _swap(date: dt.date) -> dt.date:
    return dt.date(date.year, date.day, date.month)
