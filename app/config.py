"""Service configuration: one typed ``Settings`` read from the environment and a settings
file (``.env``, or the file the ``ENV_FILE`` environment variable names; empty: none).

Every variable is documented, with its default, in ``.env.template``. Settings are built
when the app is created (``create_app``), never at import, so tests and tools can pass
their own.
"""

import difflib
import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import psycopg
from dotenv import dotenv_values
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.errors import ConfigError
from app.ranking import SearchMode
from app.storage.embedded.vector_index import make_faiss_index
from app.storage.search_index import HNSW_EF_SEARCH, MAX_EF_SEARCH

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


# A search verifies at most this many candidates (about a second of work).
MAX_RERANK_CANDIDATES = 300


class Settings(BaseSettings):
    """All knobs of the service; environment variable names are the upper-case field names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        protected_namespaces=(),
    )

    model_name: str = Field(
        default="openai/clip-vit-base-patch32",
        description="Hugging Face hub id or local folder of a CLIP checkpoint.",
    )
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N or mps.")
    # The Hugging Face hub's address and whether never to try it (huggingface_hub's own
    # variables, read here too so that loading asks the hub only when it may).
    hf_endpoint: str = Field(default="https://huggingface.co")
    hf_hub_offline: bool = Field(default=False)
    # Search by words (POST /search-by-text): loads the text tower (100 to 250 MB).
    text_search: bool = Field(default=True)
    # Another checkpoint's text tower, trained into MODEL_NAME's space; empty: MODEL_NAME's.
    text_model_name: str | None = Field(default=None)
    images_dir: Path = Field(default=Path("./example_images"))
    index_dir: Path = Field(default=Path("./data"))
    index_factory: str = Field(default="Flat")
    # Candidates an HNSW index (INDEX_FACTORY=HNSW<M>, PG_HNSW=true) explores per search:
    # more finds more of the true nearest, more slowly; pgvector allows at most 1000.
    hnsw_ef_search: int = Field(default=HNSW_EF_SEARCH, ge=1, le=MAX_EF_SEARCH)
    # Where records and vectors live: embedded (SQLite + FAISS under INDEX_DIR) or
    # postgres (DATABASE_URL, shared by replicas); docs/operations.md: Postgres.
    store: Literal["embedded", "postgres"] = Field(default="embedded")
    database_url: SecretStr | None = Field(default=None)
    pg_hnsw: bool = Field(default=False)
    api_key: SecretStr | None = Field(default=None)
    # Clients that may change the collection without API_KEY (CIDR, comma-separated).
    write_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default=[ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    )
    top_k: int = Field(default=10, ge=1)
    max_top_k: int = Field(default=100, ge=1)
    # The lowest `similarity` a search lists (a verified result's is its overlap). 0.5
    # hides only drawings that share almost nothing and leaves the list to TOP_K, conflicts
    # first and marked by their verdict; 0.85 lists conflicts and close look-alikes only
    # (docs/operations.md: what it hid on the registry benchmark).
    similarity_threshold: float = Field(default=0.5, ge=-1.0, le=1.0, allow_inf_nan=False)
    # Ranking: concept (CLIP), shape (the shape descriptor) or hybrid; see docs/ranking.md.
    search_mode: SearchMode = Field(default=SearchMode.HYBRID)
    hybrid_concept_weight: float = Field(default=0.3, ge=0.0, le=1.0, allow_inf_nan=False)
    # The verification stage: how many of the first stage's best candidates of a shape or
    # hybrid search are aligned on the query and re-ranked by overlap (0: none); each
    # costs about 4 ms (6 with turns=true); see docs/ranking.md.
    rerank_candidates: int = Field(default=8, ge=0, le=MAX_RERANK_CANDIDATES)
    max_upload_mb: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    max_image_pixels: int = Field(default=64_000_000, ge=1)
    # Images decoded at once across all requests and indexing; each may hold a few
    # hundred MB while it is decoded (docs/benchmarks.md: Memory, measured).
    decode_concurrency: int = Field(default=2, ge=1, le=64)
    decode_memory_mb: int = Field(default=640, ge=64)
    embed_batch_size: int = Field(default=16, ge=1, le=256)
    # Speed knobs (see docs/benchmarks.md "Speed, measured"); 0 means one per CPU core.
    inference: Literal["auto", "torch", "onnx", "int8"] = Field(default="auto")
    onnx_cache_dir: Path | None = Field(default=None)
    model_threads: int = Field(default=0, ge=0)
    preprocess_threads: int = Field(default=0, ge=0)
    search_batch_size: int = Field(default=8, ge=1, le=256)
    search_queue_size: int = Field(default=32, ge=1, le=1024)
    confirm_removals: bool = False
    # Index a collection's folder anew when its catalog is missing (labels lost).
    confirm_rebuild: bool = False
    seed_images_dir: Path | None = Field(default=None)
    grid_removal: bool = Field(default=True)
    grid_working_side: int = Field(default=448, ge=224, le=4096)
    grid_ink_threshold: float = Field(default=0.5, gt=0, lt=1, allow_inf_nan=False)
    grid_min_lines: int = Field(default=4, ge=2)
    grid_max_disc_fraction: float = Field(default=0.03, gt=0, le=0.2, allow_inf_nan=False)
    public_base_url: str | None = Field(default=None)
    # The host names this service answers to (besides PUBLIC_BASE_URL's): a browser
    # page on another name that resolves here (DNS rebinding) is refused.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=["localhost", "127.0.0.1", "[::1]"]
    )
    # What search answers carry in `path`: the file path (the original contract) or the
    # image's absolute URL, as the current frontend expects.
    result_path: Literal["file", "url"] = Field(default="file")
    cors_origins: Annotated[list[str], NoDecode] = Field(default=["http://localhost:3000"])
    cors_origin_regex: str | None = Field(default=None)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    # One INFO line per request (method, path, status, ms); replaces uvicorn's access log.
    request_log: bool = Field(default=True)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        value = value.strip().lower()
        if not _DEVICE_PATTERN.match(value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("model_name")
    @classmethod
    def _non_empty_model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a hub model or a local folder")
        return value.strip()

    @field_validator("index_factory")
    @classmethod
    def _usable_index_factory(cls, value: str) -> str:
        make_faiss_index(8, value.strip())  # its ValueError says what is wrong
        return value.strip()

    @field_validator(
        "public_base_url",
        "cors_origin_regex",
        "api_key",
        "onnx_cache_dir",
        "seed_images_dir",
        "database_url",
        "text_model_name",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("public_base_url", "hf_endpoint")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL such as https://api.example.com")
        return value.rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        # An origin is scheme://host[:port]; a browser never sends anything else.
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin such as https://brands.example")
        return value

    @field_validator("write_allowed_networks", "allowed_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [network.strip() for network in value.split(",") if network.strip()]
        return value

    @field_validator("cors_origin_regex")
    @classmethod
    def _compilable_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression ({exc})") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            parts = conninfo_to_dict(value.get_secret_value())
        except psycopg.ProgrammingError:
            # psycopg's reason quotes the text, password included: not repeated here.
            raise ValueError(
                "is not a PostgreSQL URL: write postgresql://user:password@host:port/database"
            ) from None
        if not str(parts.get("port", "5432")).isdigit():
            raise ValueError(f"its port {parts['port']!r} is not a number")
        return value

    @field_validator("inference", "search_mode", "result_path", "store", mode="before")
    @classmethod
    def _lower_inference(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _top_k_within_cap(self) -> "Settings":
        if self.top_k > self.max_top_k:
            raise ValueError(f"TOP_K ({self.top_k}) must not exceed MAX_TOP_K ({self.max_top_k})")
        return self

    @model_validator(mode="after")
    def _postgres_has_a_database(self) -> "Settings":
        if self.store == "postgres" and self.database_url is None:
            raise ValueError(
                "STORE=postgres needs DATABASE_URL (postgresql://user:password@host/database)"
            )
        return self

    @property
    def cpu_threads(self) -> int:
        return os.cpu_count() or 1

    @property
    def onnx_dir(self) -> Path:
        """Where exported ONNX graphs are cached, named by the checkpoint's content:
        ONNX_CACHE_DIR, else the user's cache folder (``XDG_CACHE_HOME``, else
        ``~/.cache``)/brand-search/onnx, shared by every INDEX_DIR so that a new
        collection does not export the model again."""
        if self.onnx_cache_dir is not None:
            return self.onnx_cache_dir
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(cache) / "brand-search" / "onnx"

    @property
    def write_networks_text(self) -> str:
        """WRITE_ALLOWED_NETWORKS for messages: ``127.0.0.0/8, ::1/128``, or ``none``."""
        return ", ".join(map(str, self.write_allowed_networks)) or "none"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


# Names the settings file; an environment variable only, since it says where the others are.
ENV_FILE_VARIABLE = "ENV_FILE"
DEFAULT_ENV_FILE = ".env"
# Read from the environment by uvicorn itself, never from the settings file.
UVICORN_ONLY = ("FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY")
# Settings whose values are never repeated in a message.
SECRETS = ("API_KEY", "DATABASE_URL")
# How alike an unknown key and a setting's name must be to suggest the setting.
SUGGESTION_CUTOFF = 0.75


def settings_file() -> Path | None:
    """The settings file to read: ENV_FILE's, else ``.env``; None when ENV_FILE is empty."""
    named = os.environ.get(ENV_FILE_VARIABLE, DEFAULT_ENV_FILE).strip()
    return Path(named) if named else None


def settings_file_warnings(path: Path | None) -> list[str]:
    """What the operator should hear about the settings file's keys: a key that is no
    setting (with the closest setting's name when one is close), or one only uvicorn's
    environment can set."""
    if path is None or not path.is_file():
        return []
    known = sorted(name.upper() for name in Settings.model_fields)
    warnings = []
    for key in dotenv_values(path):
        name = key.upper()
        if name in known:
            continue
        if name in UVICORN_ONLY:
            warnings.append(
                f"{key} in {path} is ignored: uvicorn reads it from the environment only; "
                f"export it or pass it on uvicorn's command line (docs/api.md: Who "
                "may change the collection)."
            )
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=SUGGESTION_CUTOFF)
        hint = f"; did you mean {close[0]}?" if close else " (.env.template lists them)."
        warnings.append(f"{key} in {path} is not a setting and is ignored{hint}")
    return warnings


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment and the settings file; raise ``ConfigError``
    naming the offending variable instead of pydantic's field-level report."""
    path = settings_file()
    if path is not None and ENV_FILE_VARIABLE in os.environ and not path.is_file():
        raise ConfigError(f"{ENV_FILE_VARIABLE}={str(path)!r}: no such file")
    try:
        return Settings(_env_file=path, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if error["loc"]:
                variable = str(error["loc"][0]).upper()
                if variable in SECRETS:  # the value is a password or holds one
                    problems.append(f"{variable} (value not shown): {error['msg']}")
                else:
                    problems.append(f"{variable}={error.get('input')!r}: {error['msg']}")
            else:  # a rule across several settings; its message names them
                problems.append(error["msg"])
        raise ConfigError("Invalid configuration: " + "; ".join(problems)) from None
