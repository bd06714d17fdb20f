"""Where a checkpoint comes from, told without loading anything heavy: a local folder
written by ``save_pretrained``, a hub id in the local Hugging Face cache, or the hub when
it answers a quick connection probe. ``python -m app`` asks ``model_problem`` before it
imports torch and transformers, so that a wrong ``MODEL_NAME`` is told in about a second,
not after the seconds those imports take on a busy machine."""

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import try_to_load_from_cache

HUB_PROBE_TIMEOUT_S = 3.0
CONFIG_FILE = "config.json"
OFFLINE_HINT = (
    "To run offline, set {setting} to a local folder holding a checkpoint saved with "
    "save_pretrained (config.json, model weights, preprocessor_config.json)."
)


@dataclass(frozen=True)
class HubAccess:
    """How to reach the Hugging Face hub: its address (HF_ENDPOINT) and whether it must
    not be tried at all (HF_HUB_OFFLINE)."""

    endpoint: str
    offline: bool

    def reachable(self) -> bool:
        if self.offline:
            return False
        parsed = urlparse(self.endpoint)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((parsed.hostname or "", port), HUB_PROBE_TIMEOUT_S):
                return True
        except OSError:
            return False


def looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists()


def is_cached(name: str) -> bool:
    """Whether hub id ``name``'s config is in the local Hugging Face cache."""
    try:
        return isinstance(try_to_load_from_cache(name, CONFIG_FILE), str)
    except ValueError:  # not a valid hub id
        return False


def model_problem(name: str, hub: HubAccess, setting: str = "MODEL_NAME") -> str | None:
    """Why checkpoint ``name`` cannot be loaded, in one line naming ``setting``; None
    when it may be (a folder with a config, a cached hub id, or a reachable hub)."""
    if looks_like_path(name):
        if not (Path(name).expanduser() / CONFIG_FILE).is_file():
            return (
                f"{setting}={name!r} is not a folder holding a checkpoint "
                f"(no {CONFIG_FILE} there). {OFFLINE_HINT.format(setting=setting)}"
            )
        return None
    if not is_cached(name) and not hub.reachable():
        return unreachable(name, setting)
    return None


def unreachable(name: str, setting: str) -> str:
    return (
        f"{setting}={name!r} is not in the local Hugging Face cache and the hub cannot be "
        f"reached. {OFFLINE_HINT.format(setting=setting)}"
    )
