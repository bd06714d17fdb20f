"""README and docs/: links that resolve, commands and settings that exist, pointers from
error messages that lead somewhere, and a README that fits on a screen or two."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import UVICORN_ONLY, Settings
from app.embedding.loading import GPU_HELP
from app.errors import ServiceError
from tests.servers import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Programs README's commands call besides the virtual environment's.
PROGRAMS = {"python3", "curl", "cp", "docker", "git", "sudo"}
# Variables README may name that are not settings: the settings file's own, uvicorn's, the
# Hugging Face cache's.
OTHER_VARIABLES = {"ENV_FILE", *UVICORN_ONLY, "HF_HOME"}
HTTP_METHODS = {"GET", "POST", "PATCH", "DELETE"}
SETTINGS = {name.upper() for name in Settings.model_fields}


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def headings(page: Path) -> set[str]:
    return {
        line.lstrip("#").strip() for line in page.read_text().splitlines() if line.startswith("#")
    }


def code_blocks(page: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        missing_anchor = anchor and linked.suffix == ".md" and anchor not in anchors(linked)
        if not linked.exists() or missing_anchor:
            broken.append(target)
    assert broken == []


def commands(block: str) -> list[list[str]]:
    """Each command of a shell block, as the shell splits it into words."""
    words = shlex.shlex(block.replace("\\\n", " "), posix=True, punctuation_chars=";&|")
    words.whitespace = " \t"  # a new line ends a command, as ; does
    found: list[list[str]] = [[]]
    for word in words:
        if word in {"&&", "||", ";", "|", "\n"} or set(word) <= set(";&|"):
            found.append([])
        else:
            found[-1].append(word)
    return [command for command in found if command]


def test_readmes_commands_name_only_programs_modules_and_files_that_exist() -> None:
    problems = []
    for block in code_blocks(README):
        for words in commands(block):
            program = words[0]
            if program.startswith(".venv/bin/"):
                if program.removeprefix(".venv/bin/") not in {"python", "pip", "uvicorn"}:
                    problems.append(program)
            elif program not in PROGRAMS:
                problems.append(program)
            if words[:2] == [".venv/bin/python", "-m"]:
                module = words[2]
                if (
                    not any(
                        (REPO / module.replace(".", "/")).with_suffix(suffix).exists()
                        or (REPO / module.replace(".", "/") / "__main__.py").exists()
                        for suffix in (".py",)
                    )
                    and module != "pytest"
                ):
                    problems.append(module)
            for before, word in zip(["", *words], words, strict=False):
                named = word.split("=@", 1)[1] if "=@" in word else None
                if before == "-r":  # pip's requirements file
                    named = word
                if named and not (REPO / named).exists():
                    problems.append(named)
    assert problems == []


def test_readmes_cli_commands_are_commands_of_the_cli() -> None:
    for block in code_blocks(README):
        for words in commands(block):
            if words[:3] == [".venv/bin/python", "-m", "app.cli.index"]:
                listed = subprocess.run(
                    [sys.executable, "-m", "app.cli.index", "--help"],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                assert words[3] in listed


def test_readme_names_only_settings_that_exist() -> None:
    text = README.read_text()
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})(?:=[^`]*)?`", text))
    named |= set(re.findall(r"\b([A-Z][A-Z0-9_]{2,})=", text))

    assert named - SETTINGS - OTHER_VARIABLES - HTTP_METHODS == set()


def error_pointers() -> list[tuple[str, str]]:
    pending, pointers = [ServiceError], [GPU_HELP]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if kind.help_page is not None and kind.help_section is not None:
            pointers.append((kind.help_page, kind.help_section))
    return sorted(set(pointers))


@pytest.mark.parametrize(("page", "section"), error_pointers())
def test_every_pointer_of_a_start_up_error_leads_to_a_heading(page: str, section: str) -> None:
    assert section in headings(REPO / page)


def test_readme_fits_on_a_screen_or_two_with_the_start_first() -> None:
    lines = README.read_text().splitlines()
    quick_start = lines.index("## Quick start")
    offline = lines.index("## Offline use")

    assert len(lines) <= 250
    commands_at = [n for n, line in enumerate(lines) if line.startswith("python3 -m venv .venv")]
    assert len(commands_at) == 2 and all(quick_start < n < 50 for n in commands_at)
    assert offline < 100
    assert not re.search(r"\bI (chose|measured|wrote|kept|left)\b", "\n".join(lines))


def test_readmes_count_of_sample_drawings_is_the_sample_folders() -> None:
    samples = [path for path in (REPO / "example_images").iterdir() if path.suffix == ".jpg"]
    told = re.search(r"`example_images/` holds (\d+) sample drawings", README.read_text())

    assert told is not None and int(told.group(1)) == len(samples)


@pytest.mark.parametrize("requirements", sorted(REPO.glob("requirements*.txt")))
def test_every_pointer_of_a_requirements_file_leads_to_a_heading(requirements: Path) -> None:
    pointers = re.findall(r'see (\S+\.md) \("([^"]+)"\)', requirements.read_text())

    for page, section in pointers:
        assert section in headings(REPO / page), (page, section)
