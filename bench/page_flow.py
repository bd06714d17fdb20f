"""Does the page ask before registering exactly when it should? The check-then-register
flow of the service's own page, driven in Chromium, on real scans.

    .venv/bin/python -m bench.page_flow --real-scans ../shared/real_scans [--brands 10]

A fresh, empty registry, searched with ``SEARCH_MODE=shape``: the model is the
random-weight ViT-B/32, whose concept scores would pick the verified candidates at random
in the hybrid mode; the question follows the verdicts, which read the stroke masks only.
A clerk registers ``--brands`` real scans one after another (leaving out the ones of one
body with another head, ``RELATED_BODIES``, which are related, not unrelated), each with
a label; then a re-drawing of each registered one by another hand
(``bench/registry_scans.py``) is checked and "Registrar" pressed. Printed: how many of
the unrelated registrations were questioned (the target: none) and how many re-drawings
were (the target: every one), with the question, or the first result when none came.
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, expect, sync_playwright

from bench.registry_scans import RELATED_BODIES, load_masks, on_page, real_scans, redraw_mask
from bench.service_bench import CACHE, full_size_checkpoint, running_server

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SEED = 3030
ANSWER_TIMEOUT_MS = 120_000


def checked(page: Page, file: Path | dict[str, object]) -> None:
    """Pick ``file`` and wait until its check has answered (Registrar enabled)."""
    page.set_input_files("#file", file)  # type: ignore[arg-type]
    expect(page.locator("#register-button")).to_be_enabled(timeout=ANSWER_TIMEOUT_MS)


def asked(page: Page) -> str | None:
    """Press Registrar: the question's text when the page asks, else None."""
    page.locator("#register-button").click()
    page.wait_for_function(
        "() => document.querySelector('#confirm-dialog').open || document.querySelector("
        "'#register-message').textContent.startsWith('Registrada')",
        timeout=ANSWER_TIMEOUT_MS,
    )
    dialog = page.locator("#confirm-dialog")
    return page.locator("#confirm-text").inner_text() if dialog.is_visible() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real-scans", type=Path, required=True)
    parser.add_argument("--brands", type=int, default=10)
    parser.add_argument("--seed", type=int, default=SEED, help="the re-drawing hands")
    args = parser.parse_args()
    related = {stem for pair in RELATED_BODIES for stem in pair}
    scans = [path for path in real_scans(args.real_scans) if path.stem not in related]
    scans = scans[: args.brands]
    masks = load_masks()
    rng = np.random.default_rng(args.seed)
    checkpoint = full_size_checkpoint()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "images").mkdir()
        environment = {
            **os.environ,
            "MODEL_NAME": str(checkpoint),
            "IMAGES_DIR": str(root / "images"),
            "INDEX_DIR": str(root / "index"),
            "ONNX_CACHE_DIR": str(CACHE / "onnx"),
            "LOG_LEVEL": "WARNING",
            "SEARCH_MODE": "shape",
        }
        with running_server(environment) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
            page = browser.new_context(base_url=server.url, locale="es-ES").new_page()
            page.goto("/")
            questioned = []
            for number, scan in enumerate(scans):
                checked(page, scan)
                page.locator("#label").fill(f"Reg. {number} - escaneo {scan.stem}")
                question = asked(page)
                if question is not None:
                    questioned.append((scan.name, question))
                    page.locator("#confirm-yes").click()
                expect(page.locator("#register-message")).to_contain_text("Registrada")
            print(f"unrelated real scans registered: {len(scans)}, questioned: {len(questioned)}")
            for name, question in questioned:
                print(f"  {name}: {question}")
            redrawings = []
            for scan in scans:
                data = on_page(redraw_mask(masks[scan.stem], rng), rng)
                checked(page, {"name": f"{scan.stem}.png", "mimeType": "image/png", "buffer": data})
                first = page.locator("#results li").first.inner_text().replace("\n", " · ")
                question = asked(page)
                redrawings.append((scan.name, question or f"no question; first result: {first}"))
                if question is not None:
                    page.locator("#confirm-no").click()
            print(
                f"re-drawings of registered scans: {len(redrawings)}, questioned: "
                f"{sum(question.startswith('Su dibujo') for _, question in redrawings)}"
            )
            for name, question in redrawings:
                print(f"  {name}: {question}")
            browser.close()


if __name__ == "__main__":
    main()
