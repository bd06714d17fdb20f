"""Schemathesis, the command line with every check and every phase (examples, coverage,
fuzzing, stateful sequences of linked operations), against a real server with a fixed
seed and a bounded number of examples: no answer may be a 5xx or break the OpenAPI
schema. ``tests/fuzz_hooks.py`` turns half of the uploads into real drawings."""

import sys
from collections.abc import Callable
from pathlib import Path

from tests.servers import Server, run_command

KEY = "fuzzing-key"
MAX_EXAMPLES = 15
# Bytes that are valid for the schema (a binary string) may still be no image: 400
# (corrupt), 413 (too many pixels) and 415 (not an image) are the documented answers.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "415"]
"""


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # No allowed networks: the fuzzer checks that writes need the key.
    server = start_server({"API_KEY": KEY, "WRITE_ALLOWED_NETWORKS": "", "REQUEST_LOG": "false"})
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)

    run = run_command(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--seed",
            "1",
            "--generation-deterministic",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--header",
            f"X-API-Key: {KEY}",
            "--suppress-health-check",
            "all",
        ],
        {"SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PATH": "/usr/bin:/bin"},
        timeout_s=600,
    )

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in run.stdout, run.stdout[-3000:]
