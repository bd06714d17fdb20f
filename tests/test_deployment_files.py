"""The Dockerfile, the ignore files and the documentation's Docker commands, checked by
reading (no Docker engine runs here): what a newcomer following them literally needs."""

import re
import subprocess

import yaml

from app.config import Settings
from tests.servers import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
# README and the docs pages, as one text: a command may be told on either.
DOCS = "\n".join(
    path.read_text() for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
)


def dockerfile_instructions(name: str) -> list[str]:
    """Every instruction ``name`` of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line[len(name) + 1 :] for line in joined.splitlines() if line.startswith(f"{name} ")]


def test_the_hugging_face_cache_exists_in_the_image_owned_by_the_service_user() -> None:
    home = next(
        value.split("=", 1)[1].split()[0]
        for env in dockerfile_instructions("ENV")
        for value in env.split()
        if value.startswith("HF_HOME=")
    )
    runs = " ".join(dockerfile_instructions("RUN"))
    user_line = DOCKERFILE.index("USER app")

    assert home == "/home/app/.cache/huggingface"
    assert re.search(r"mkdir -p [^&]*\"\$HF_HOME\"", runs)
    assert "chown -R app:app /srv/images /srv/data /srv/shared /home/app/.cache" in runs
    assert DOCKERFILE.index("$HF_HOME") < user_line


def test_the_container_command_bounds_idle_and_concurrent_connections() -> None:
    command = dockerfile_instructions("CMD")[-1]

    assert '"python", "-m", "app"' in command
    assert '"--timeout-keep-alive", "5"' in command
    assert '"--limit-concurrency", "64"' in command
    assert "--timeout-keep-alive 5 --limit-concurrency 64" in DOCS


def test_a_local_model_folder_is_left_out_of_git_and_of_the_build_context() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "models/clip/model.safetensors"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    docker_ignored = (REPO / ".dockerignore").read_text().split()

    assert ignored.returncode == 0, "models/ is not in .gitignore"
    assert "models/" in docker_ignored or "models" in docker_ignored


def test_readme_creates_the_env_file_before_docker_run_uses_it() -> None:
    docker = DOCS[DOCS.index("## Docker") :]

    assert docker.index("cp .env.template .env") < docker.index("docker run")
    assert "--env-file .env" in docker


def test_readme_runs_python_commands_from_the_virtual_environment() -> None:
    bare = re.findall(r"(?<![/\w])python -m [\w.]+", DOCS)

    assert bare == ["python -m app"]  # the container's command, which has no .venv


def test_compose_runs_two_replicas_on_pgvector_sharing_the_database_and_the_images() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    db, api = compose["services"]["db"], compose["services"]["api"]
    environment = api["environment"]
    images_volume = next(v for v in api["volumes"] if v.endswith(":/srv/shared"))
    runs = " ".join(dockerfile_instructions("RUN"))

    assert db["image"].startswith("pgvector/pgvector:")
    assert api["deploy"]["replicas"] == 2
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert environment["STORE"] == "postgres"
    assert re.fullmatch(
        r"postgresql://brands:\$\{POSTGRES_PASSWORD[^}]*\}@db:5432/brands",
        environment["DATABASE_URL"],
    )
    assert environment["IMAGES_DIR"].startswith("/srv/shared/")
    assert images_volume.split(":")[0] in compose["volumes"]
    assert "/srv/shared/images" in runs  # the volume starts owned by the service's user
    # Every variable the compose file sets is a setting of the service.
    assert {name.lower() for name in environment} <= set(Settings.model_fields)
    assert "docker compose up -d --build" in DOCS


def test_uploads_live_on_a_volume_that_gets_the_samples_at_its_first_start() -> None:
    environment = dict(
        value.split("=", 1) for env in dockerfile_instructions("ENV") for value in env.split()
    )
    volumes = " ".join(dockerfile_instructions("VOLUME"))
    docker_run = next(line for line in DOCS.splitlines() if line.startswith("docker run"))
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())

    assert environment["IMAGES_DIR"] == "/srv/images"
    assert '"/srv/images"' in volumes
    assert "-v image-search-images:/srv/images" in docker_run
    assert environment["SEED_IMAGES_DIR"] == "/srv/example_images"
    assert "COPY --chown=app:app example_images/ example_images/" in DOCKERFILE
    assert compose["services"]["api"]["environment"]["SEED_IMAGES_DIR"] == "/srv/example_images"
