"""The service's own page at ``/``, driven in a real Chromium (Debian's ``chromium``
package, through Playwright) against a real server process.

Where no Chromium is installed these tests are skipped with a message; with
BROWSER_TESTS=required (as ``.ci/run`` sets) they fail instead, so CI never skips them
silently.
"""

import base64
import http.server
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.conftest import EXAMPLE_IMAGES, drawing, encode
from tests.servers import Server

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
KEY = "key-typed-in-the-page"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = (
            f"No Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium) "
            "or set CHROMIUM to run the browser tests."
        )
        if os.environ.get("BROWSER_TESTS") == "required":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@dataclass
class Visit:
    """A tab on the page, with what went wrong in it."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


@pytest.fixture
def visit(browser: Browser, start_server: Callable[..., Server]) -> Iterator[Callable[..., Visit]]:
    """Start a server with the given settings and open its page in a new tab."""
    contexts = []

    def open_page(settings: dict[str, str] | None = None, **context_options: object) -> Visit:
        server = start_server(settings)
        context = browser.new_context(base_url=server.url, **context_options)  # type: ignore[arg-type]
        contexts.append(context)
        tab = Visit(context.new_page())
        tab.page.on("console", tab.record)
        tab.page.on("pageerror", lambda error: tab.page_errors.append(str(error)))
        tab.page.on("dialog", lambda dialog: dialog.accept())  # "Delete …?" confirmations
        tab.page.goto("/")
        expect(tab.page.locator("#page-info")).to_contain_text("images")
        return tab

    yield open_page
    for context in contexts:
        context.close()


def drawing_file(folder: Path, seed: int) -> Path:
    path = folder / f"brand-{seed}.png"
    path.write_bytes(encode(drawing(seed=seed), "PNG"))
    return path


def wait_loaded(page: Page, selector: str) -> None:
    page.wait_for_function(
        "selector => { const images = [...document.querySelectorAll(selector)];"
        " return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0); }",
        arg=selector,
    )


def test_a_search_with_an_upload_shows_result_cards_with_loaded_thumbnails(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page

    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")

    cards = page.locator("#results li")
    expect(cards.first).to_contain_text("1. imagen3.jpg")
    expect(page.locator("#search-message")).to_contain_text(f"{cards.count()} similar images")
    assert cards.count() > 1
    expect(cards.first.locator(".similarity")).to_have_text("similarity 1.000")
    expect(cards.first).to_contain_text("concept 1.000 · shape 1.000")
    wait_loaded(page, "#results img")
    wait_loaded(page, "#embedder-preview")
    assert page.eval_on_selector("#embedder-preview", "i => i.naturalWidth") == 224
    assert tab.console_errors == [] and tab.page_errors == []


def test_opening_a_result_shows_the_two_drawings_laid_over_each_other(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    first = page.locator("#results li").first
    expect(first).to_contain_text("covers 1.000 of it")

    first.get_by_role("button", name="Compare your drawing with imagen3.jpg").click()

    dialog = page.locator("#compare-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#compare-scores")).to_contain_text("overlap 1.000")
    wait_loaded(page, "#compare-image")
    assert page.eval_on_selector("#compare-image", "i => i.naturalWidth") == 256
    page.locator("#compare-close").click()
    expect(dialog).to_be_hidden()
    assert tab.console_errors == [] and tab.page_errors == []


def test_the_controls_start_at_the_service_defaults(visit: Callable[..., Visit]) -> None:
    page = visit({"SIMILARITY_THRESHOLD": "0.3", "TOP_K": "7", "SEARCH_MODE": "shape"}).page

    expect(page.locator("#threshold")).to_have_value("0.3")
    expect(page.locator("#threshold-value")).to_have_text("0.30")
    expect(page.locator("#top-k")).to_have_value("7")
    expect(page.locator('input[name="mode"][value="shape"]')).to_be_checked()


def test_the_mode_switch_and_the_threshold_search_again(visit: Callable[..., Visit]) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li").first).to_contain_text("1. imagen3.jpg")
    before = page.locator("#results li").count()

    with page.expect_response(lambda response: "mode=shape" in response.url):
        page.get_by_label("Shape").check()
    with page.expect_response(lambda response: "min_similarity=0.99" in response.url):
        page.locator("#threshold").fill("0.99")

    shown = [
        float(text.split()[-1]) for text in page.locator("#results .similarity").all_inner_texts()
    ]
    assert shown[0] == 1.0 and all(value >= 0.99 for value in shown)
    assert len(shown) < before
    expect(page.locator("#threshold-value")).to_have_text("0.99")
    assert tab.console_errors == [] and tab.page_errors == []


def test_adding_a_drawing_shows_the_similar_ones_and_a_duplicate_shows_the_409_message(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", drawing_file(tmp_path, seed=21))
    expect(page.locator("#results li").first).to_be_visible()

    page.get_by_role("button", name="Add to the collection").click()

    message = page.locator("#search-message")
    expect(message).to_contain_text("Added brand-21.png as ")
    expect(page.locator("#results-title")).to_have_text(
        "Already in the collection and similar to it"
    )
    expect(page.locator("#page-info")).to_contain_text("9 images")
    expect(page.locator("#images li").first).to_contain_text("brand-21.png")
    wait_loaded(page, "#images img")

    page.get_by_role("button", name="Add to the collection").click()

    expect(message).to_contain_text("The collection already holds this image")
    expect(message).to_have_attribute("role", "alert")
    assert tab.console_errors == [
        "Failed to load resource: the server responded with a status of 409 (Conflict)"
    ]
    assert tab.page_errors == []


def test_the_collection_pages_and_deleting_the_last_row_goes_back_a_page(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    for seed in range(30, 35):
        data = drawing_file(tmp_path, seed).read_bytes()
        added = httpx.post(page.url + "images/", files={"file": (f"old-{seed}.png", data)})
        assert added.status_code == 201
    page.select_option("#page-size", "12")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2 · 13 images")

    page.get_by_role("button", name="Next").click()

    expect(page.locator("#page-info")).to_have_text("Page 2 of 2 · 13 images")
    expect(page.locator("#images li")).to_have_count(1)
    expect(page.get_by_role("button", name="Next")).to_be_disabled()

    page.locator("#images li button").click()

    expect(page.locator("#collection-message")).to_contain_text("Deleted ")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 1 · 12 images")
    expect(page.locator("#images li")).to_have_count(12)
    wait_loaded(page, "#images img")
    assert tab.console_errors == [] and tab.page_errors == []


def test_with_an_api_key_a_write_without_it_is_refused_and_with_it_succeeds(
    visit: Callable[..., Visit],
) -> None:
    tab = visit({"API_KEY": KEY, "WRITE_ALLOWED_NETWORKS": ""})
    page = tab.page
    message = page.locator("#collection-message")

    page.get_by_role("button", name="Delete imagen8.jpg").click()

    expect(message).to_contain_text("X-API-Key")
    expect(message).to_contain_text("Type the API key at the top of the page")
    expect(page.locator("#page-info")).to_contain_text("8 images")

    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Delete imagen8.jpg").click()

    expect(message).to_have_text("Deleted imagen8.jpg.")
    expect(page.locator("#page-info")).to_contain_text("7 images")
    page.reload()
    expect(page.get_by_label("API key")).to_have_value(KEY)  # kept for this tab
    assert tab.console_errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    assert tab.page_errors == []


def test_a_file_that_is_not_an_image_shows_the_services_message(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a drawing")

    page.set_input_files("#file", fake)

    message = page.locator("#search-message")
    expect(message).to_contain_text("not an image")
    expect(message).to_have_attribute("role", "alert")
    expect(page.locator("h1")).to_have_text("Image similarity search")
    assert tab.page_errors == []
    assert all(error.startswith("Failed to load resource") for error in tab.console_errors)


def test_the_page_is_usable_with_the_keyboard_alone(visit: Callable[..., Visit]) -> None:
    tab = visit()
    page = tab.page
    # Playwright intercepts file choosers only once something listens for them, and turns
    # that on asynchronously: listening before the key presses closes the race.
    page.on("filechooser", lambda chooser: None)

    page.keyboard.press("Tab")  # the API key field
    page.keyboard.press("Tab")  # the file picker
    assert page.evaluate("document.activeElement.id") == "file"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(EXAMPLE_IMAGES / "imagen5.jpg")

    expect(page.locator("#results li").first).to_contain_text("1. imagen5.jpg")
    assert tab.console_errors == [] and tab.page_errors == []


def test_the_page_fits_a_phone_screen(visit: Callable[..., Visit]) -> None:
    tab = visit(viewport=PHONE, is_mobile=True, has_touch=True)
    page = tab.page

    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li").first).to_contain_text("1. imagen3.jpg")
    wait_loaded(page, "#results img")

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("#results li").first.bounding_box()["width"] >= 140  # type: ignore[index]
    assert tab.console_errors == [] and tab.page_errors == []


def test_a_search_by_words_shows_the_nearest_images_with_their_concept_score(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    words = "a circle crossed by a vertical bar"

    page.get_by_label("Or search by words").fill(words)
    page.get_by_label("Or search by words").press("Enter")

    cards = page.locator("#results li")
    expect(page.locator("#results-title")).to_have_text(f"Results for “{words}”")
    expect(cards).to_have_count(8)
    expect(page.locator("#search-message")).to_have_text("8 images, nearest the words first.")
    expect(cards.first.locator("small")).to_have_text(re.compile(r"^concept -?\d\.\d{3}$"))
    wait_loaded(page, "#results img")

    page.get_by_label("Or search by words").fill("   ")
    page.get_by_role("button", name="Search by words").click()

    expect(page.locator("#search-message")).to_contain_text("Type what the drawing shows")
    assert tab.console_errors == [] and tab.page_errors == []


def test_with_text_search_off_the_page_offers_no_words_box(visit: Callable[..., Visit]) -> None:
    tab = visit({"TEXT_SEARCH": "false"})

    expect(tab.page.locator("#health")).to_contain_text("8 images")
    expect(tab.page.get_by_label("Or search by words")).to_be_hidden()
    assert tab.console_errors == [] and tab.page_errors == []


ATTACK = """<!doctype html><title>Elsewhere</title><script>
async function attack(api, png) {
  const bytes = Uint8Array.from(atob(png), c => c.charCodeAt(0));
  const form = new FormData();
  form.append("file", new Blob([bytes], {type: "image/png"}), "forged.png");
  // A form post: no CORS preflight, so the browser sends it; its answer is opaque.
  await fetch(api + "/images/", {method: "POST", body: form, mode: "no-cors"});
  await fetch(api + "/reindex", {method: "POST", mode: "no-cors"});
}
</script>"""


@contextmanager
def another_site() -> Iterator[str]:
    """A web server of someone else's on this machine (another origin: another port),
    serving ``ATTACK``; its URL."""

    class AttackPage(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = ATTACK.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), AttackPage) as site:
        threading.Thread(target=site.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{site.server_address[1]}/"
        site.shutdown()


def test_a_page_on_another_site_cannot_make_the_clerks_browser_add_a_brand(
    browser: Browser, start_server: Callable[..., Server]
) -> None:
    server = start_server({"LOG_LEVEL": "INFO"})
    context = browser.new_context()
    try:
        with another_site() as elsewhere:
            page = context.new_page()
            page.goto(elsewhere)
            png = base64.b64encode(encode(drawing(seed=41), "PNG")).decode()

            page.evaluate("([api, png]) => attack(api, png)", [server.url, png])
    finally:
        context.close()

    refused = [line for line in server.log if re.search(r"POST /(images/|reindex) 403", line)]
    assert len(refused) == 2, "".join(server.log[-10:])
    assert httpx.get(f"{server.url}/images/").json()["total"] == 8
