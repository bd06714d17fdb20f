"""The composition root: everything the service runs, built from ``Settings`` in one
place (the app's lifespan and the command lines call ``Service.open``).

What it builds, in order: the towers (image; text unless TEXT_SEARCH=false), the
model's worker, the encoder, the image folder, the store, the indexing's progress, the
search, the collection and the reconciler. Nothing here holds a default of its own.
"""

import logging
import threading
from dataclasses import dataclass

from app.collection import Collection
from app.comparison import Comparison
from app.config import Settings
from app.embedding.batching import EmbeddingBatcher
from app.embedding.image import ImageTower
from app.embedding.model_source import HubAccess
from app.embedding.text import TextTower
from app.embedding.tower import TowerOptions
from app.encoder import Encoder
from app.errors import ModelLoadError
from app.folder_guard import claim
from app.folders import prepare_folders
from app.imaging.grid_removal import GridRemovalParams
from app.imaging.preprocessing import PreprocessingOptions
from app.memory import MB, MemoryBudget
from app.messages.catalogue import Message, message, render
from app.metrics import IMAGES_INDEXED
from app.reconciliation import IndexingProgress, Reconciler
from app.search import Admission, QueryDefaults, Search
from app.storage.factory import open_store
from app.storage.image_folder import ImageFolder
from app.storage.store import Store
from app.verifier import Verifier

logger = logging.getLogger(__name__)


def tower_options(settings: Settings) -> TowerOptions:
    return TowerOptions(
        device=settings.device,
        inference=settings.inference,
        model_threads=settings.model_threads,
        cpu_threads=settings.cpu_threads,
        onnx_dir=settings.onnx_dir,
        hub=HubAccess(settings.hf_endpoint, settings.hf_hub_offline),
    )


def preprocessing_options(settings: Settings) -> PreprocessingOptions:
    return PreprocessingOptions(
        remove_grid=settings.grid_removal,
        working_side=settings.grid_working_side,
        grid=GridRemovalParams(
            ink_threshold_fraction=settings.grid_ink_threshold,
            min_grid_lines=settings.grid_min_lines,
            max_disc_fraction=settings.grid_max_disc_fraction,
        ),
    )


def load_text_tower(
    settings: Settings, options: TowerOptions, image_tower: ImageTower
) -> tuple[TextTower | None, Message | None]:
    """The text tower TEXT_SEARCH asks for, or ``None`` and why there is none."""
    if not settings.text_search:
        return None, message("text_search_off")
    setting = "TEXT_MODEL_NAME" if settings.text_model_name else "MODEL_NAME"
    name = settings.text_model_name or settings.model_name
    try:
        text_tower = TextTower.load(name, options, setting)
    except ModelLoadError as exc:
        if settings.text_model_name:  # asked for by name: a configuration error
            raise
        # A checkpoint folder saved without its tokenizer (as README once told): image
        # search still works; text search says why it does not.
        reason = message("text_tower_missing", reason=exc.message)
        logger.warning(render(reason))
        return None, reason
    if text_tower.dimension != image_tower.dimension:
        raise ModelLoadError(
            f"{setting}={name!r} makes {text_tower.dimension}-dimensional vectors "
            f"and MODEL_NAME's images are {image_tower.dimension}-dimensional: the text "
            "tower must share the image tower's space."
        )
    return text_tower, None


@dataclass
class Service:
    """Everything the service runs, built once per process."""

    settings: Settings
    encoder: Encoder
    folder: ImageFolder
    store: Store
    progress: IndexingProgress
    search: Search
    collection: Collection
    reconciler: Reconciler
    comparison: Comparison

    @classmethod
    def open(cls, settings: Settings) -> "Service":
        """Load the towers, open IMAGES_DIR and the store (STORE), which loads the stored
        vectors (blocking: seconds; embeds nothing: ``reconciler.reconcile`` does)."""
        prepare_folders(settings)  # before the model: a folder's error is told at once
        options = tower_options(settings)
        image_tower = ImageTower.load(settings.model_name, options)
        text_tower, text_off_reason = load_text_tower(settings, options, image_tower)
        encoder = Encoder(
            image_tower,
            text_tower,
            text_off_reason,
            EmbeddingBatcher(settings.search_batch_size),
            preprocessing_options(settings),
            settings.max_image_pixels,
            settings.decode_concurrency,
            MemoryBudget(settings.decode_memory_mb * MB),
        )
        folder = ImageFolder(settings.images_dir)
        store = open_store(settings, encoder.space)
        try:
            claim(
                folder,
                store,
                settings.confirm_removals,
                settings.seed_images_dir,
                settings.confirm_rebuild,
            )
        except BaseException:
            store.close()
            raise
        IMAGES_INDEXED.set_function(store.searchable_count)
        progress = IndexingProgress(ready=store.searchable_count() > 0)
        defaults = QueryDefaults(
            settings.top_k,
            settings.max_top_k,
            settings.similarity_threshold,
            settings.search_mode,
            settings.hybrid_concept_weight,
        )
        verifier = Verifier(encoder.strokes, settings.rerank_candidates)
        search = Search(
            encoder,
            store,
            folder,
            progress,
            Admission(settings.search_queue_size),
            defaults,
            verifier,
        )
        write_lock = threading.Lock()
        reconciler = Reconciler(
            encoder,
            folder,
            store,
            write_lock,
            progress,
            settings.embed_batch_size,
            settings.preprocess_threads or settings.cpu_threads,
        )
        logger.info("Loaded %d stored vectors from %s", store.searchable_count(), store.location)
        return cls(
            settings,
            encoder,
            folder,
            store,
            progress,
            search,
            Collection(encoder, folder, store, search, write_lock),
            reconciler,
            Comparison(encoder, store, verifier),
        )

    def close(self) -> None:
        self.encoder.close()
        self.store.close()
