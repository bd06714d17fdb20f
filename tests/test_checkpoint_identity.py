"""A checkpoint is known by its weights, not its path: the stored vectors follow the
weights (``app.embedding.checkpoint_digest``)."""

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import CLIPImageProcessor, CLIPModel

from app.config import Settings
from app.service import Service


def searchable_at_open(settings: Settings) -> int:
    """How many images the service on ``settings`` can search as soon as it opens (its
    stored vectors of this checkpoint), before it embeds anything; then it indexes."""
    service = Service.open(settings)
    try:
        searchable = service.store.searchable_count()
        service.reconciler.reconcile()
        return searchable
    finally:
        service.close()


def resave(source: Path, target: Path, change_weights: bool = False) -> Path:
    """``source``'s checkpoint written again by ``save_pretrained``, as a saved copy of a
    hub model is; with ``change_weights``, one vision weight nudged."""
    model = CLIPModel.from_pretrained(source)
    if change_weights:
        with torch.no_grad():
            model.visual_projection.weight[0, 0] += 0.5
    model.save_pretrained(target)
    CLIPImageProcessor.from_pretrained(source).save_pretrained(target)
    return target


def test_a_saved_copy_of_the_checkpoint_elsewhere_reuses_every_stored_vector(
    make_settings: Callable[..., Settings], tiny_model_dir: Path, tmp_path: Path
) -> None:
    assert searchable_at_open(make_settings()) == 0  # a new store
    copy = resave(tiny_model_dir, tmp_path / "models" / "clip")

    assert searchable_at_open(make_settings(model_name=str(copy))) == 8


def test_other_weights_under_the_same_path_embed_everything_again(
    make_settings: Callable[..., Settings], tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = resave(tiny_model_dir, tmp_path / "models" / "clip")
    searchable_at_open(make_settings(model_name=str(folder)))
    assert searchable_at_open(make_settings(model_name=str(folder))) == 8
    resave(tiny_model_dir, folder, change_weights=True)

    assert searchable_at_open(make_settings(model_name=str(folder))) == 0
