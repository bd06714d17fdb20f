"""A checkpoint known by its content, not its path: the stored vectors are keyed by a
digest of the weights that make them, so the same weights under another path (a folder
by its absolute path, a hub model's saved copy) reuse them, and other weights under the
same path make new ones.

Pipeline: the folder's weight files (``*.safetensors``, else ``*.bin``) -> the tensors
whose names start with the tower's prefixes, in name order -> SHA-256 of each name,
dtype, shape and bytes, and of the image processor's settings that change pixels -> a
hex digest. Tensors, not files: ``save_pretrained`` writes other headers, another tensor
order or other shards for the same weights. The digest of a file set is kept in the ONNX
cache (by path, size and modification time), so a start hashes the weights only once.
"""

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open

logger = logging.getLogger(__name__)

# Hidden, beside the exports: not an export itself.
DIGEST_CACHE = ".checkpoint-digests.json"
PROCESSOR_FILE = "preprocessor_config.json"
# The image processor's settings that change the pixels the tower sees.
PROCESSOR_KEYS = (
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_convert_rgb",
)


def weight_files(folder: Path) -> list[Path]:
    """The checkpoint's weight files: safetensors where there are any, else torch's."""
    found = sorted(folder.glob("*.safetensors"))
    return found or sorted(folder.glob("*.bin"))


def checkpoint_digest(folder: Path, prefixes: tuple[str, ...], cache_dir: Path) -> str:
    """The digest of the tensors named with ``prefixes`` in ``folder``'s checkpoint (and
    of its image processor's settings), from the cache when these files were hashed
    before."""
    files = weight_files(folder)
    stamp = json.dumps(
        [prefixes, *((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)]
    )
    known = _read_cache(cache_dir)
    if stamp in known:
        return known[stamp]
    digest = hashlib.sha256()
    for name, tensor in sorted(_tensors(files, prefixes), key=lambda item: item[0]):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
    digest.update(_processor_settings(folder).encode())
    known[stamp] = digest.hexdigest()
    _write_cache(cache_dir, known)
    return known[stamp]


def _tensors(files: list[Path], prefixes: tuple[str, ...]) -> Iterator[tuple[str, torch.Tensor]]:
    for file in files:
        if file.suffix == ".safetensors":
            with safe_open(str(file), framework="pt") as opened:
                for name in opened.keys():  # noqa: SIM118 - safe_open is not a mapping
                    if name.startswith(prefixes):
                        yield name, opened.get_tensor(name)
        else:
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            yield from ((n, t) for n, t in state.items() if n.startswith(prefixes))


def _processor_settings(folder: Path) -> str:
    try:
        config = json.loads((folder / PROCESSOR_FILE).read_text())
    except (OSError, ValueError):
        return ""
    return json.dumps({key: config.get(key) for key in PROCESSOR_KEYS}, sort_keys=True)


def _read_cache(cache_dir: Path) -> dict[str, str]:
    try:
        known = json.loads((cache_dir / DIGEST_CACHE).read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _write_cache(cache_dir: Path, known: dict[str, str]) -> None:
    """Replace the cache file whole (workers may read it meanwhile); a cache that cannot
    be written, or a cache folder that does not exist, only costs the next start a hash."""
    if not cache_dir.is_dir():
        return
    try:
        handle, temporary = tempfile.mkstemp(prefix=".digests-", dir=cache_dir)
        with os.fdopen(handle, "w") as out:
            json.dump(known, out)
        Path(temporary).replace(cache_dir / DIGEST_CACHE)
    except OSError as exc:
        logger.warning("Cannot keep the checkpoint's digest in %s (%s)", cache_dir, exc)
