"""Screenshot the service's page with a search on it, for README (``docs/page.png``).

Run against a started service:
    .venv/bin/python -m scripts.screenshot_page http://127.0.0.1:8000 \\
        test_images/imagen21_redrawn.jpg docs/page.png --mode shape

Drives Debian's chromium (CHROMIUM, default /usr/bin/chromium) through Playwright.
"""

import argparse
import os
from pathlib import Path

from playwright.sync_api import ViewportSize, expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
VIEWPORT = ViewportSize(width=1280, height=1820)
LOCALE = "es-ES"  # the clerks' language, the page's first


def screenshot(url: str, query: Path, output: Path, mode: str, width: int) -> None:
    """Open the page in Spanish, search with ``query`` in ``mode``, wait for every thumbnail, and
    save the whole page as a PNG."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(
            viewport=ViewportSize(width=width, height=VIEWPORT["height"]), locale=LOCALE
        )
        page.goto(url)
        page.locator(f'input[name="mode"][value="{mode}"]').check()
        page.set_input_files("#file", query)
        expect(page.locator("#results li").first).to_be_visible()
        page.wait_for_function(
            "[...document.querySelectorAll('#results img, .previews img')]"
            ".every(i => i.complete && i.naturalWidth)"
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=output)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the service, e.g. http://127.0.0.1:8000")
    parser.add_argument("query", type=Path, help="the drawing to search with")
    parser.add_argument("output", type=Path, help="where to write the PNG")
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "shape", "concept"])
    parser.add_argument("--width", type=int, default=VIEWPORT["width"], help="viewport width")
    arguments = parser.parse_args()
    screenshot(arguments.url, arguments.query, arguments.output, arguments.mode, arguments.width)


if __name__ == "__main__":
    main()
