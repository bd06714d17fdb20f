"""Settings come from the environment and one settings file, and the test suite is
independent of both on a developer's machine."""

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from app.config import load_settings, settings_file_warnings
from app.errors import ConfigError
from tests.servers import REPO, run_command

HOSTILE = {
    "API_KEY": "the-developers-key",
    "TOP_K": "2",
    "MAX_TOP_K": "2",
    "WRITE_ALLOWED_NETWORKS": "192.0.2.0/24",
}
# Tests whose answers each of HOSTILE's values would change: a result count, a write from
# this machine, and a real server's refusal of a client outside the networks.
SENSITIVE = [
    "tests/test_search_api.py::test_results_are_sorted_best_first_and_respect_top_k",
    "tests/test_write_access.py::test_without_api_key_loopback_clients_may_change_the_collection",
    "tests/test_write_access.py::test_behind_a_trusted_proxy_the_client_is_the_forwarded_address",
]
CHECKOUT = ("app", "tests", "scripts", "example_images", "pyproject.toml")


def test_the_suite_ignores_a_developers_env_file_and_environment(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    for name in CHECKOUT:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, checkout / name)
    (checkout / ".env").write_text("".join(f"{key}={value}\n" for key, value in HOSTILE.items()))
    environment = {key: value for key, value in os.environ.items() if key != "ENV_FILE"}

    finished = run_command(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SENSITIVE],
        {**environment, **HOSTILE},
        cwd=checkout,
        timeout_s=600,
    )

    assert finished.returncode == 0, finished.stdout[-3000:]
    assert re.search(r"^\d+ passed in", finished.stdout, re.MULTILINE), finished.stdout


def test_env_file_names_the_settings_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = tmp_path / "registry.env"
    settings.write_text("TOP_K=4\n")
    monkeypatch.setenv("ENV_FILE", str(settings))

    assert load_settings().top_k == 4


def test_an_env_file_that_does_not_exist_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "missing.env"))

    with pytest.raises(ConfigError, match=r"^ENV_FILE='.*missing\.env': no such file$"):
        load_settings()


def test_unknown_keys_in_the_settings_file_are_named_with_the_closest_setting(
    tmp_path: Path,
) -> None:
    settings = tmp_path / ".env"
    settings.write_text("TOPK=5\nIMAGE_DIR=/srv/brands\nFAVOURITE_COLOUR=blue\nTOP_K=5\n")

    warnings = settings_file_warnings(settings)

    assert warnings == [
        f"TOPK in {settings} is not a setting and is ignored; did you mean TOP_K?",
        f"IMAGE_DIR in {settings} is not a setting and is ignored; did you mean IMAGES_DIR?",
        f"FAVOURITE_COLOUR in {settings} is not a setting and is ignored (.env.template "
        "lists them).",
    ]


def test_forwarded_allow_ips_in_the_settings_file_is_said_to_need_the_environment(
    tmp_path: Path,
) -> None:
    settings = tmp_path / ".env"
    settings.write_text("FORWARDED_ALLOW_IPS=10.0.0.5\n")

    [warning] = settings_file_warnings(settings)

    assert warning.startswith(f"FORWARDED_ALLOW_IPS in {settings} is ignored: uvicorn reads")
