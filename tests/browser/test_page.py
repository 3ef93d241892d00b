"""The web page in a real headless Chromium: ask, see the answer, its highlighted source."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.support import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ON_TOPIC = "How much will the Hong Kong government earmark for the innovation center?"
OFF_TOPIC = "What is the capital of France?"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser build)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run 'bash tests/setup_browser.sh' (apt chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser: Any, server: LiveServer, width: int, height: int) -> tuple[Any, list[str]]:
    """A new page on the app; the list collects console errors and uncaught exceptions."""
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(server.url + "/")
    # The article list loads on its own.
    # Arrow functions, not expressions: polling an expression needs eval, which the CSP forbids.
    page.wait_for_function("() => document.querySelectorAll('#documents li.document').length >= 2")
    return page, problems


def ask(page: Any, question: str) -> None:
    """Type a question, press Enter, wait for the answer or the abstention."""
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.wait_for_function(
        "q => !document.querySelector('#result').hidden && "
        "document.querySelector('#result').dataset.question === q",
        arg=question, timeout=60_000,
    )


def test_ask_shows_answer_and_highlighted_citation(
    browser: Any, page_server: LiveServer
) -> None:
    page, problems = open_page(browser, page_server, 1280, 900)
    assert page.inner_text("#document-count") == "2"
    ask(page, ON_TOPIC)
    answered = page.locator("#answer").count() == 1
    if answered:
        assert page.inner_text("#answer").strip()
        assert "Confidence" in page.inner_text("#answer-box")
        marks = page.locator("#citations li.citation blockquote mark")
        assert marks.count() >= 1
        mark = marks.first.inner_text()
        passage = page.locator("#citations li.citation blockquote").first.inner_text()
        assert mark and mark in passage
        assert page.inner_text("#answer").strip() in mark
        assert page.locator("#citations li.citation h4").first.inner_text()
        assert page.locator("#citations li.citation time").first.get_attribute("datetime")
    else:  # a weak reader may abstain; the page must still say so clearly
        assert "Not in the articles" in page.inner_text("#abstention")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-answer.png"), full_page=True)
    assert not problems, problems


def test_off_topic_question_shows_abstention_on_a_phone(
    browser: Any, page_server: LiveServer
) -> None:
    page, problems = open_page(browser, page_server, 390, 844)
    ask(page, OFF_TOPIC)
    assert page.inner_text("#abstention").strip() == "Not in the articles"
    assert page.locator("#answer").count() == 0
    assert page.locator("#citations-box").is_hidden()
    # Phone width: nothing sticks out sideways.
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-abstention-phone.png"), full_page=True)
    assert not problems, problems


def test_article_text_is_never_interpreted_as_html(
    browser: Any, page_server: LiveServer
) -> None:
    page, problems = open_page(browser, page_server, 1024, 800)
    token = page_server.token
    assert token
    payload = '<img src=x onerror="window.pwned=1">Zebra crossing <b>bold</b> zqxhtml'
    page.click("#add-box summary")
    page.fill("#add-title", "<script>window.pwned=2</script> Zebra")
    page.fill("#add-text", f"{payload}. The zebra crossing zqxhtml opened on Monday.")
    page.fill("#add-token", token)
    page.click("#add-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#add-status').textContent.startsWith('Added')"
    )
    page.wait_for_function("() => document.querySelectorAll('#documents li.document').length >= 3")
    ask(page, "zebra crossing zqxhtml")
    assert page.evaluate("() => window.pwned === undefined")
    assert page.locator("#result img, #documents img, #result b").count() == 0
    assert "<script>" in page.inner_text("#documents")
    assert not problems, problems
