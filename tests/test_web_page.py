"""The service's own page at ``/``, driven in a real Chromium (Debian's ``chromium``
package, through Playwright) against a real server process.

The clerks' browsers speak Spanish (``locale="es-ES"``) unless a test says otherwise.
Where no Chromium is installed these tests are skipped with a message; with
BROWSER_TESTS=required (as ``.ci/run`` sets) they fail instead, so CI never skips them
silently.
"""

import base64
import contextlib
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
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Route,
    expect,
    sync_playwright,
)

from tests.conftest import EXAMPLE_IMAGES, drawing, encode
from tests.servers import Server

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
KEY = "key-typed-in-the-page"
PHONE = {"width": 380, "height": 800}
SPANISH = {"locale": "es-ES"}


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
    server: Server
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)  # requests not to the service

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def add(self, seed: int, label: str | None = None) -> dict[str, object]:
        """Register a drawing through the API, as another clerk would."""
        data = encode(drawing(seed=seed), "PNG")
        form = {"label": label} if label else {}
        added = httpx.post(
            f"{self.server.url}/images/", files={"file": (f"brand-{seed}.png", data)}, data=form
        )
        assert added.status_code == 201, added.text
        return added.json()["image"]  # type: ignore[no-any-return]

    def request(self, url: str) -> None:
        if not url.startswith((self.server.url, "blob:", "data:")):
            self.elsewhere.append(url)

    def clean(self) -> bool:
        """Nothing went wrong in the tab and nothing was loaded from elsewhere."""
        return self.page_errors == [] and self.console_errors == [] and self.elsewhere == []


@pytest.fixture
def visit(browser: Browser, start_server: Callable[..., Server]) -> Iterator[Callable[..., Visit]]:
    """Start a server with the given settings and open its page in a new tab."""
    contexts = []

    def open_page(settings: dict[str, str] | None = None, **context_options: object) -> Visit:
        server = start_server(settings)
        options = {**SPANISH, **context_options}
        context = browser.new_context(base_url=server.url, **options)  # type: ignore[arg-type]
        contexts.append(context)
        tab = Visit(context.new_page(), server)
        tab.page.on("console", tab.record)
        tab.page.on("request", lambda request: tab.request(request.url))
        tab.page.on("pageerror", lambda error: tab.page_errors.append(str(error)))
        tab.page.goto("/")
        expect(tab.page.locator("#page-info")).not_to_be_empty()
        return tab

    yield open_page
    for context in contexts:
        context.close()


def drawing_file(folder: Path, seed: int, image_format: str = "PNG") -> Path:
    path = folder / f"brand-{seed}.{image_format.lower()}"
    path.write_bytes(encode(drawing(seed=seed), image_format))
    return path


def wait_loaded(page: Page, selector: str) -> None:
    page.wait_for_function(
        "selector => { const images = [...document.querySelectorAll(selector)];"
        " return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0); }",
        arg=selector,
    )


def card(page: Page, list_id: str, name: str) -> Locator:
    return page.locator(f"#{list_id} li").filter(has_text=name)


REFUSED = "Failed to load resource: the server responded with a status of {}"


def test_the_page_speaks_spanish_by_default_and_a_search_shows_the_closest_brands(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    expect(page.locator("h1")).to_have_text("Registro de marcas")
    expect(page.locator("#health")).to_have_text("8 marcas registradas · listo para buscar")
    assert page.evaluate("document.documentElement.lang") == "es"

    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")

    cards = page.locator("#results li")
    expect(cards.first).to_contain_text("1. imagen3.jpg")
    expect(page.locator("#search-message")).to_have_text(
        "Una marca registrada es la misma, la contiene o se le parece mucho: mírela antes de "
        "registrar."
    )
    assert cards.count() > 1
    expect(cards.first.locator(".verdict")).to_have_text("La misma marca")
    expect(cards.nth(1).locator(".verdict")).to_have_text("Distinta")
    expect(cards.first.locator(".similarity")).to_have_text("similitud 1,000")
    expect(cards.first).to_contain_text("concepto 1,000 · forma 1,000")
    expect(cards.first.locator(".coverage")).to_have_text(re.compile(r"^su dibujo cubre el 100\s%"))
    wait_loaded(page, "#results img")
    wait_loaded(page, "#embedder-preview")
    assert page.eval_on_selector("#embedder-preview", "i => i.naturalWidth") == 224
    assert tab.clean()


def test_a_browser_in_another_language_gets_spanish_too(visit: Callable[..., Visit]) -> None:
    tab = visit(locale="de-DE")

    expect(tab.page.locator("h1")).to_have_text("Registro de marcas")
    expect(tab.page.locator("#language")).to_have_value("es")


def test_an_english_browser_gets_the_page_and_the_services_messages_in_english(
    visit: Callable[..., Visit],
) -> None:
    tab = visit(locale="en-US")
    page = tab.page
    expect(page.locator("h1")).to_have_text("Brand registry")
    expect(page.locator("#health")).to_have_text("8 registered brands · ready to search")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 1 · 8 brands")

    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li .similarity").first).to_have_text("similarity 1.000")

    card(page, "images", "imagen8.jpg").get_by_role("button", name="Open imagen8.jpg").click()
    page.get_by_role("button", name="Delete this brand").click()
    page.locator("#confirm-yes").click()
    expect(page.locator("#registry-message")).to_contain_text("Deleted imagen8.jpg.")
    assert tab.clean()


def test_the_language_switch_turns_the_page_to_english_and_back(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li .similarity").first).to_have_text("similitud 1,000")

    page.get_by_label("Idioma").select_option("en")

    expect(page.locator("h1")).to_have_text("Brand registry")
    expect(page.get_by_role("button", name="Register")).to_be_visible()
    expect(page.locator("#results li .similarity").first).to_have_text("similarity 1.000")
    assert page.evaluate("document.documentElement.lang") == "en"
    page.reload()
    expect(page.locator("h1")).to_have_text("Brand registry")  # the clerk's choice is kept
    page.get_by_label("Language").select_option("es")
    expect(page.locator("h1")).to_have_text("Registro de marcas")
    assert tab.clean()


def test_both_catalogues_hold_every_text_the_page_names_and_the_same_keys(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    catalogues = page.evaluate(
        "async () => { const m = await import('/web/messages.js');"
        " return Object.fromEntries(Object.entries(m.MESSAGES).map("
        "([language, texts]) => [language, Object.keys(texts).sort()])); }"
    )
    named = page.evaluate(
        "() => [...document.querySelectorAll('*')].flatMap(node => [...node.attributes])"
        ".filter(a => a.name.startsWith('data-i18n')).map(a => a.value)"
    )

    assert set(catalogues) == {"es", "en"}
    assert catalogues["es"] == catalogues["en"]
    assert set(named) <= set(catalogues["es"])
    script = httpx.get(f"{tab.server.url}/web/messages.js")
    assert script.headers["content-type"].split(";")[0] in {
        "text/javascript",
        "application/javascript",
    }


def test_opening_a_result_shows_the_two_drawings_side_by_side_and_laid_over_each_other(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    first = page.locator("#results li").first
    expect(first).to_contain_text("1. imagen3.jpg")

    first.get_by_role("button", name="Comparar su dibujo con imagen3.jpg").click()

    dialog = page.locator("#compare-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#compare-title")).to_have_text("Su dibujo sobre imagen3.jpg")
    expect(page.locator("#compare-scores")).to_contain_text("coincidencia 100")
    expect(page.locator("#compare-second-caption")).to_have_text("imagen3.jpg")
    expect(page.locator("#legend-query")).to_have_text("su dibujo, alineado")
    wait_loaded(page, "#compare-dialog img")
    assert page.eval_on_selector("#compare-image", "i => i.naturalWidth") == 256
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert tab.clean()


def test_a_turned_match_names_its_turn_in_words(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    tab.add(seed=23, label="Reg. 23")
    turned = tmp_path / "turned.png"
    turned.write_bytes(encode(drawing(seed=23).rotate(90), "PNG"))
    page.get_by_label("Buscarla también girada o espejada").check()

    page.set_input_files("#file", turned)

    first = page.locator("#results li").first
    expect(first).to_contain_text("1. Reg. 23")
    expect(first.locator(".turn")).to_have_text(re.compile("^girada 90° a la (izquierda|derecha)$"))
    assert tab.clean()


def test_the_controls_start_at_the_service_defaults(visit: Callable[..., Visit]) -> None:
    page = visit({"SIMILARITY_THRESHOLD": "0.3", "TOP_K": "7", "SEARCH_MODE": "shape"}).page

    expect(page.locator("#threshold")).to_have_value("0.3")
    expect(page.locator("#threshold-value")).to_have_text("0,30")
    expect(page.locator("#top-k")).to_have_value("7")
    expect(page.locator('input[name="mode"][value="shape"]')).to_be_checked()


def test_the_mode_switch_and_the_threshold_search_again(visit: Callable[..., Visit]) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li").first).to_contain_text("1. imagen3.jpg")
    before = page.locator("#results li").count()

    with page.expect_response(lambda response: "mode=shape" in response.url):
        page.get_by_label("Forma", exact=True).check()
    with page.expect_response(lambda response: "min_similarity=0.99" in response.url):
        page.locator("#threshold").fill("0.99")

    shown = [
        float(text.split()[-1].replace(",", "."))
        for text in page.locator("#results .similarity").all_inner_texts()
    ]
    assert shown[0] == 1.0 and all(value >= 0.99 for value in shown)
    assert len(shown) < before
    expect(page.locator("#threshold-value")).to_have_text("0,99")
    assert tab.clean()


def test_registering_asks_first_naming_the_close_match_and_stores_the_label(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    tab.add(seed=21, label="Reg. 1043 - Juan Pérez")
    page.get_by_role("button", name="Actualizar").click()
    expect(page.locator("#health")).to_contain_text("9 marcas registradas")
    page.set_input_files("#file", drawing_file(tmp_path, seed=21, image_format="JPEG"))
    expect(page.locator("#results li").first).to_contain_text("1. Reg. 1043 - Juan Pérez")
    page.get_by_label("Etiqueta (opcional)").fill("Reg. 2000 - Ana Gómez")

    page.get_by_role("button", name="Registrar").click()

    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_be_visible()
    expect(page.locator("#confirm-text")).to_have_text(
        re.compile(
            r"^Su dibujo es la misma marca que Reg\. 1043 - Juan Pérez \(id [0-9a-f]{8}…\.png\)\. "
            r"¿Registrarla igualmente\?$"
        )
    )
    wait_loaded(page, "#confirm-image")  # the two laid over each other
    page.get_by_role("button", name="Cancelar").click()
    expect(confirm).to_be_hidden()
    assert httpx.get(f"{tab.server.url}/image-count/").json() == {"count": 9}

    page.get_by_role("button", name="Registrar").click()
    page.get_by_role("button", name="Registrar igualmente").click()

    message = page.locator("#register-message")
    expect(message).to_contain_text("Registrada: Reg. 2000 - Ana Gómez (id ")
    # The registered drawing leaves the form: it cannot be registered twice by a click.
    expect(page.get_by_role("button", name="Registrar")).to_be_disabled()
    expect(page.get_by_label("Etiqueta (opcional)")).to_have_value("")
    expect(page.locator("#health")).to_contain_text("10 marcas registradas")
    newest = page.locator("#images li").first
    expect(newest).to_contain_text("Reg. 2000 - Ana Gómez")
    expect(newest).to_contain_text("archivo brand-21.jpeg")
    wait_loaded(page, "#images img")
    listed = httpx.get(f"{tab.server.url}/images/", params={"q": "ana gomez"}).json()
    assert [image["label"] for image in listed["images"]] == ["Reg. 2000 - Ana Gómez"]

    page.set_input_files("#file", drawing_file(tmp_path, seed=21, image_format="JPEG"))
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(page.get_by_role("button", name="Registrar")).to_be_enabled()
    page.get_by_role("button", name="Registrar").click()
    expect(page.locator("#confirm-text")).to_contain_text("Hay otra marca más en conflicto.")
    page.get_by_role("button", name="Registrar igualmente").click()

    expect(message).to_contain_text("El registro ya tiene esta marca: Reg. 2000 - Ana Gómez")
    expect(message).to_have_attribute("role", "alert")
    assert tab.console_errors == [REFUSED.format("409 (Conflict)")]
    assert tab.page_errors == []


def test_a_drawing_like_no_registered_brand_is_registered_without_a_question(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit({"SIMILARITY_THRESHOLD": "0.999"})
    page = tab.page
    page.set_input_files("#file", drawing_file(tmp_path, seed=22))
    expect(page.locator("#search-message")).to_have_text(
        "Ninguna marca registrada se parece por encima del umbral."
    )

    page.get_by_role("button", name="Registrar").click()

    expect(page.locator("#register-message")).to_contain_text("Registrada: brand-22.png (id ")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert tab.clean()


def test_a_drawing_unlike_every_registered_brand_is_registered_without_a_question(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", drawing_file(tmp_path, seed=22))
    expect(page.locator("#search-message")).to_contain_text(
        "Ninguna marca registrada es la misma ni la contiene; abajo, las"
    )
    expect(page.locator("#results li .verdict").first).to_have_text("Distinta")

    page.get_by_role("button", name="Registrar").click()

    expect(page.locator("#register-message")).to_have_text(
        re.compile(r"^Registrada: brand-22\.png \(id [0-9a-f]{8}…\.png\)\.$")
    )
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    newest = page.locator("#images li").first.locator(".id")
    expect(newest).to_have_text(re.compile(r"^id [0-9a-f]{8}…\.png$"))
    newest.click()  # the full id, one click away
    expect(newest).to_have_text(re.compile(r"^id [0-9a-f]{32}\.png$"))
    assert tab.clean()


PDF = {"name": "formulario.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 ..."}


def test_choosing_a_pdf_after_a_checked_drawing_leaves_nothing_to_register(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li").first).to_contain_text("1. imagen3.jpg")
    page.get_by_label("Etiqueta (opcional)").fill("Reg. 77 - para el PDF")

    page.set_input_files("#file", PDF)  # type: ignore[arg-type]

    expect(page.locator("#search-message")).to_have_text("formulario.pdf no es una imagen.")
    expect(page.locator("#results li")).to_have_count(0)
    expect(page.locator("#previews")).to_be_hidden()
    expect(page.get_by_label("Etiqueta (opcional)")).to_have_value("")
    expect(page.get_by_role("button", name="Registrar")).to_be_disabled()
    page.locator("#register-form").evaluate("form => form.requestSubmit()")
    expect(page.locator("#register-message")).to_have_text(
        "Primero elija el dibujo y mire las parecidas."
    )
    assert httpx.get(f"{tab.server.url}/image-count/").json() == {"count": 8}
    assert tab.clean()


def test_a_file_the_service_refuses_after_a_checked_drawing_leaves_nothing_to_register(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    fake = tmp_path / "escaneo.png"
    fake.write_text("not a drawing")
    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li").first).to_contain_text("1. imagen3.jpg")

    page.set_input_files("#file", fake)

    expect(page.locator("#search-message")).to_contain_text("El archivo no es una imagen")
    expect(page.locator("#results li")).to_have_count(0)
    expect(page.get_by_role("button", name="Registrar")).to_be_disabled()
    page.locator("#register-form").evaluate("form => form.requestSubmit()")
    expect(page.locator("#register-message")).to_have_text(
        "Primero elija el dibujo y mire las parecidas."
    )
    assert httpx.get(f"{tab.server.url}/image-count/").json() == {"count": 8}


def test_registrar_waits_for_the_check_of_the_drawing_on_screen(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    tab.add(seed=21, label="Reg. 21")
    held: list[Route] = []
    page.route("**/search-similar-images/**", lambda route: held.append(route))

    page.set_input_files("#file", drawing_file(tmp_path, seed=21))

    page.wait_for_function("() => document.querySelector('#search-message').textContent")
    register = page.get_by_role("button", name="Registrar")
    expect(register).to_be_disabled()  # a click now would skip the check
    page.locator("#register-form").evaluate("form => form.requestSubmit()")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert httpx.get(f"{tab.server.url}/image-count/").json() == {"count": 9}
    held[0].continue_()
    expect(register).to_be_enabled()
    register.click()
    expect(page.locator("#confirm-text")).to_contain_text("Su dibujo es la misma marca que Reg. 21")


def test_an_overtaken_check_never_overwrites_the_newer_drawings_results(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    tab.add(seed=21, label="Reg. 21")
    tab.add(seed=23, label="Reg. 23")
    held: list[Route] = []

    def hold_the_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/search-similar-images/**", hold_the_first)
    page.set_input_files("#file", drawing_file(tmp_path, seed=21))
    page.wait_for_function("() => document.querySelector('#search-message').textContent")

    page.set_input_files("#file", drawing_file(tmp_path, seed=23))
    expect(page.locator("#results li").first).to_contain_text("1. Reg. 23")
    with contextlib.suppress(Exception):  # the page aborted it: nothing to continue
        held[0].continue_()
    page.wait_for_timeout(500)

    expect(page.locator("#results li").first).to_contain_text("1. Reg. 23")
    page.get_by_role("button", name="Registrar").click()
    expect(page.locator("#confirm-text")).to_contain_text("Su dibujo es la misma marca que Reg. 23")


def test_counts_are_spoken_with_their_plural_in_both_languages(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    for number in range(1, 8):
        assert httpx.delete(f"{tab.server.url}/images/imagen{number}.jpg").status_code == 200
    page.reload()

    expect(page.locator("#health")).to_have_text("1 marca registrada · listo para buscar")
    # The page before the reload may still have asked for a deleted brand's thumbnail.
    tab.console_errors.clear()
    expect(page.locator("#page-info")).to_have_text("Página 1 de 1 · 1 marca")
    page.get_by_role("button", name="Borrar todo el registro…").click()
    expect(page.locator("#confirm-text")).to_contain_text("¿Borrar la única marca del registro?")
    page.get_by_role("button", name="Cancelar").click()
    page.get_by_label("Idioma").select_option("en")
    expect(page.locator("#health")).to_have_text("1 registered brand · ready to search")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 1 · 1 brand")
    page.get_by_label("Language").select_option("es")

    page.get_by_role("button", name="Borrar todo el registro…").click()
    page.get_by_label("Palabra de confirmación").fill("ELIMINAR")
    page.get_by_role("button", name="Borrar todo", exact=True).click()
    expect(page.locator("#registry-message")).to_contain_text(
        "Se borró la única marca del registro."
    )
    assert tab.clean()


def test_a_setting_the_service_refuses_is_named_as_the_page_names_it(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li").first).to_contain_text("1. imagen3.jpg")

    page.get_by_label("Cuántas mostrar").fill("0")
    page.get_by_label("Cuántas mostrar").dispatch_event("change")

    expect(page.locator("#search-message")).to_have_text(
        "Cuántas mostrar: Debe ser mayor o igual que 1"
    )
    expect(page.locator("#results li")).to_have_count(0)
    expect(page.get_by_role("button", name="Registrar")).to_be_disabled()


def test_the_registry_filters_and_pages(visit: Callable[..., Visit]) -> None:
    tab = visit()
    page = tab.page
    for seed in range(30, 35):
        tab.add(seed, label=f"Reg. {seed} - Estancia Núñez")
    page.reload()
    page.select_option("#page-size", "12")
    expect(page.locator("#page-info")).to_have_text("Página 1 de 2 · 13 marcas")

    page.get_by_role("button", name="Siguiente").click()

    expect(page.locator("#page-info")).to_have_text("Página 2 de 2 · 13 marcas")
    expect(page.locator("#images li")).to_have_count(1)
    expect(page.get_by_role("button", name="Siguiente")).to_be_disabled()

    page.get_by_label("Filtrar por etiqueta, archivo o id").fill("estancia nunez")
    page.get_by_label("Filtrar por etiqueta, archivo o id").press("Enter")

    expect(page.locator("#page-info")).to_have_text("Página 1 de 1 · 5 marcas con «estancia nunez»")
    expect(page.locator("#images li").first).to_contain_text("Reg. 34 - Estancia Núñez")
    expect(page.locator("#images li").first).to_contain_text("archivo brand-34.png")

    page.get_by_label("Filtrar por etiqueta, archivo o id").fill("nadie")
    page.get_by_role("button", name="Filtrar", exact=True).click()
    expect(page.locator("#page-info")).to_have_text("Ninguna marca tiene «nadie»")
    expect(page.locator("#images li")).to_have_count(0)
    assert tab.clean()


def test_a_registered_brand_opens_large_with_its_conflicts_its_label_and_delete(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    brand = card(page, "images", "imagen3.jpg")
    brand.get_by_role("button", name="Abrir imagen3.jpg").click()

    dialog = page.locator("#brand-dialog")
    expect(dialog).to_be_visible()
    wait_loaded(page, "#brand-image")
    assert page.locator("#brand-image").bounding_box()["width"] >= 300  # type: ignore[index]

    page.get_by_role("button", name="Parecidas a esta").click()

    similar = page.locator("#brand-similar-results li")
    expect(similar.first).to_be_visible()
    assert "imagen3.jpg" not in " ".join(similar.locator(".name").all_inner_texts())
    other = similar.first.locator(".name").inner_text().split(". ", 1)[1]
    similar.first.get_by_role("button", name=f"Comparar {other} con imagen3.jpg").click()
    expect(page.locator("#compare-dialog")).to_be_visible()
    expect(page.locator("#compare-title")).to_have_text(f"imagen3.jpg sobre {other}")
    expect(page.locator("#compare-scores")).to_contain_text("coincidencia")
    wait_loaded(page, "#compare-dialog img")
    page.get_by_role("button", name="Cerrar").first.click()
    expect(page.locator("#compare-dialog")).to_be_hidden()

    page.get_by_label("Etiqueta", exact=True).fill("Reg. 3 - La Esperanza")
    page.get_by_role("button", name="Guardar etiqueta").click()
    expect(page.locator("#brand-message")).to_have_text("Etiqueta guardada.")
    expect(page.locator("#brand-title")).to_have_text("Reg. 3 - La Esperanza")
    expect(card(page, "images", "Reg. 3 - La Esperanza")).to_contain_text("id imagen3.jpg")

    page.get_by_role("button", name="Borrar esta marca").click()
    expect(page.locator("#confirm-text")).to_have_text(
        "¿Borrar Reg. 3 - La Esperanza (id imagen3.jpg) del registro? Su archivo se elimina."
    )
    page.locator("#confirm-yes").click()

    expect(dialog).to_be_hidden()
    expect(page.locator("#registry-message")).to_contain_text(
        "Se borró Reg. 3 - La Esperanza (id imagen3.jpg)."
    )
    expect(page.locator("#page-info")).to_have_text("Página 1 de 1 · 7 marcas")
    assert httpx.get(f"{tab.server.url}/images/imagen3.jpg").status_code == 404
    assert tab.clean()


def test_deleting_everything_needs_the_typed_word(visit: Callable[..., Visit]) -> None:
    tab = visit()
    page = tab.page
    page.get_by_role("button", name="Borrar todo el registro…").click()

    expect(page.locator("#confirm-text")).to_contain_text("Escriba ELIMINAR para confirmar.")
    yes = page.get_by_role("button", name="Borrar todo", exact=True)
    expect(yes).to_be_disabled()
    page.get_by_label("Palabra de confirmación").fill("borrar")
    expect(yes).to_be_disabled()
    page.get_by_role("button", name="Cancelar").click()
    expect(page.locator("#page-info")).to_have_text("Página 1 de 1 · 8 marcas")

    page.get_by_role("button", name="Borrar todo el registro…").click()
    expect(page.get_by_label("Palabra de confirmación")).to_have_value("")
    page.get_by_label("Palabra de confirmación").fill("ELIMINAR")
    yes.click()

    expect(page.locator("#registry-message")).to_contain_text(
        "Se borraron las 8 marcas del registro."
    )
    expect(page.locator("#page-info")).to_have_text("Aún no hay marcas registradas")
    expect(page.locator("#health")).to_contain_text("0 marcas registradas")
    assert tab.clean()


def test_a_refused_write_shows_the_services_spanish_message_until_the_key_is_typed(
    visit: Callable[..., Visit],
) -> None:
    tab = visit({"API_KEY": KEY, "WRITE_ALLOWED_NETWORKS": ""})
    page = tab.page
    message = page.locator("#brand-message")
    expect(page.get_by_label("Clave de la API")).to_be_hidden()  # out of the way until needed
    card(page, "images", "imagen8.jpg").get_by_role("button", name="Abrir imagen8.jpg").click()

    page.get_by_role("button", name="Borrar esta marca").click()
    page.locator("#confirm-yes").click()

    expect(message).to_contain_text("no envió la cabecera X-API-Key")
    expect(message).to_contain_text("Escriba la clave de la API arriba")
    expect(message).to_have_attribute("role", "alert")
    page.locator("#brand-close").click()
    expect(page.locator("#page-info")).to_contain_text("8 marcas")

    page.get_by_label("Clave de la API").fill(KEY)
    card(page, "images", "imagen8.jpg").get_by_role("button", name="Abrir imagen8.jpg").click()
    page.get_by_role("button", name="Borrar esta marca").click()
    page.locator("#confirm-yes").click()

    expect(page.locator("#registry-message")).to_contain_text("Se borró imagen8.jpg.")
    expect(page.locator("#page-info")).to_contain_text("7 marcas")
    page.reload()
    expect(page.get_by_label("Clave de la API")).to_have_value(KEY)  # kept for this tab
    assert tab.console_errors == [REFUSED.format("401 (Unauthorized)")]
    assert tab.page_errors == []


def test_a_file_that_is_not_an_image_shows_the_services_spanish_message(
    visit: Callable[..., Visit], tmp_path: Path
) -> None:
    tab = visit()
    page = tab.page
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a drawing")

    page.set_input_files("#file", fake)

    message = page.locator("#search-message")
    expect(message).to_contain_text("El archivo no es una imagen en un formato admitido")
    expect(message).to_have_attribute("role", "alert")
    assert tab.page_errors == []
    assert all(error.startswith("Failed to load resource") for error in tab.console_errors)


def test_the_page_is_usable_with_the_keyboard_alone(visit: Callable[..., Visit]) -> None:
    tab = visit()
    page = tab.page
    # Playwright intercepts file choosers only once something listens for them, and turns
    # that on asynchronously: listening before the key presses closes the race.
    page.on("filechooser", lambda chooser: None)

    page.keyboard.press("Tab")  # the language
    page.keyboard.press("Tab")  # the service's details (the API key is hidden until needed)
    page.keyboard.press("Tab")  # the file picker
    assert page.evaluate("document.activeElement.id") == "file"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(EXAMPLE_IMAGES / "imagen5.jpg")
    expect(page.locator("#results li").first).to_contain_text("1. imagen5.jpg")

    page.get_by_role("button", name="Comparar su dibujo con imagen5.jpg").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#compare-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#compare-dialog")).to_be_hidden()
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input, select, button')]"
        ".filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')"
        " && !c.textContent.trim()).map(c => c.id || c.outerHTML)"
    )
    assert unlabelled == []
    assert tab.clean()


def test_the_page_fits_a_380_pixel_screen(visit: Callable[..., Visit]) -> None:
    tab = visit(viewport=PHONE, is_mobile=True, has_touch=True)
    page = tab.page

    page.set_input_files("#file", EXAMPLE_IMAGES / "imagen3.jpg")
    expect(page.locator("#results li").first).to_contain_text("1. imagen3.jpg")
    wait_loaded(page, "#results img")

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("#results li").first.bounding_box()["width"] >= 140  # type: ignore[index]
    page.get_by_role("button", name="Comparar su dibujo con imagen3.jpg").click()
    wait_loaded(page, "#compare-dialog img")
    box = page.locator("#compare-dialog").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert tab.clean()


def test_a_search_by_words_shows_the_nearest_images_with_their_concept_score(
    visit: Callable[..., Visit],
) -> None:
    tab = visit()
    page = tab.page
    words = "a circle crossed by a vertical bar"

    page.get_by_label("O buscar por palabras").fill(words)
    page.get_by_label("O buscar por palabras").press("Enter")

    cards = page.locator("#results li")
    expect(page.locator("#results-title")).to_have_text(f"Resultados para «{words}»")
    expect(cards).to_have_count(8)
    expect(page.locator("#search-message")).to_have_text(
        "8 marcas, las más cercanas a las palabras primero."
    )
    expect(cards.first.locator("small.muted")).to_have_text(re.compile(r"^concepto -?\d,\d{3}$"))
    wait_loaded(page, "#results img")

    page.get_by_label("O buscar por palabras").fill("   ")
    page.get_by_role("button", name="Buscar por palabras").click()

    expect(page.locator("#search-message")).to_contain_text("Escriba lo que muestra el dibujo")
    assert tab.clean()


def test_with_text_search_off_the_page_offers_no_words_box(visit: Callable[..., Visit]) -> None:
    tab = visit({"TEXT_SEARCH": "false"})

    expect(tab.page.locator("#health")).to_contain_text("8 marcas")
    expect(tab.page.get_by_label("O buscar por palabras")).to_be_hidden()
    assert tab.clean()


@pytest.mark.parametrize(
    ("path", "operation"),
    [("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id^='operation/'] h2")],
)
def test_the_api_docs_render_with_every_other_host_blocked(
    browser: Browser, start_server: Callable[..., Server], path: str, operation: str
) -> None:
    server = start_server()
    context = browser.new_context()
    blocked: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            blocked.append(route.request.resource_type)
            route.abort()

    context.route("**/*", only_the_service)
    try:
        page = context.new_page()
        page.goto(server.url + path)
        expect(page.locator(operation).first).to_be_visible(timeout=20_000)
        assert page.locator(operation).count() >= 5
    finally:
        context.close()
    # ReDoc's footer asks its vendor for a logo (an image; nothing else is missed).
    assert set(blocked) <= {"image"}


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
