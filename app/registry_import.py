"""Importing an existing registry: a folder of scans and a CSV of ``file,label`` (the
registration number and owner, UTF-8), registered as uploads are, labels included.

Pipeline (``RegistryImport.run``): the whole CSV is read and checked first (every file
it names is in the folder, or nothing is imported) -> in batches of EMBED_BATCH_SIZE,
worker threads decode, clean and frame the next batch's scans while the model embeds the
current one in one call -> each scan is registered as an upload is
(``Collection.register``: staged, committed with its label, published), so a kill at
any moment leaves whole registrations only.

Resumable: run it again after a kill or a power cut and each scan whose bytes the
collection already holds is counted as already registered, not added twice (the store
refuses the same bytes twice atomically). Every scan not registered is listed with its
reason in the report (CSV: ``line,file,label,outcome,reason``), written as the import
goes.
"""

import csv
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from numpy.typing import NDArray

from app.collection import Collection
from app.embedding.read_ahead import read_ahead
from app.encoder import Encoder
from app.errors import DuplicateImageError, ServiceError
from app.storage.image_folder import sha256_hex
from app.storage.types import Vectors

logger = logging.getLogger(__name__)

# A header row is recognised by these names in its first two cells (any case).
HEADER = ("file", "label")
REPORT_COLUMNS = ("line", "file", "label", "outcome", "reason")
ALREADY_REGISTERED = "already_registered"
REFUSED = "refused"


class RegistryCsvError(ServiceError):
    """The CSV cannot be imported as it is; nothing was imported."""


@dataclass(frozen=True)
class Row:
    line: int  # in the CSV, from 1
    file: str  # as the CSV names it, relative to the folder
    label: str | None


@dataclass(frozen=True)
class ImportSummary:
    registered: int
    already_registered: int
    refused: int


def read_rows(csv_path: Path, folder: Path) -> list[Row]:
    """The CSV's rows, each naming a file inside ``folder``; raises ``RegistryCsvError``
    naming the first line that cannot be imported (not UTF-8, no file column, a file
    missing or outside the folder)."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryCsvError(f"{csv_path} is not UTF-8 text ({exc.reason}).") from exc
    except OSError as exc:
        raise RegistryCsvError(f"{csv_path} cannot be read ({exc.strerror}).") from exc
    rows: list[Row] = []
    root = folder.resolve()
    for number, cells in enumerate(csv.reader(text.splitlines()), start=1):
        if not cells or not any(cell.strip() for cell in cells):
            continue
        if number == 1 and tuple(cell.strip().casefold() for cell in cells[:2]) == HEADER:
            continue
        name = cells[0].strip()
        path = (folder / name).resolve()
        if not name or not path.is_relative_to(root) or not path.is_file():
            raise RegistryCsvError(
                f"{csv_path} line {number} names {name!r}, which is not a file in {folder}: "
                "nothing was imported."
            )
        label = cells[1].strip() if len(cells) > 1 else ""
        rows.append(Row(number, name, label or None))
    if not rows:
        raise RegistryCsvError(f"{csv_path} names no file: nothing was imported.")
    return rows


@dataclass(frozen=True)
class Prepared:
    """What the model and the store need of a scan."""

    pixels: NDArray[np.float32]
    drawing: Vectors


# Why a scan is not embedded: its outcome and the reason.
Skipped = tuple[str, str]


class Report:
    """The report file: every scan not registered, with its reason, flushed per line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._writer = csv.writer(stream)
        self._writer.writerow(REPORT_COLUMNS)

    def add(self, row: Row, outcome: str, reason: str) -> None:
        self._writer.writerow((row.line, row.file, row.label or "", outcome, reason))
        self._stream.flush()


class RegistryImport:
    """Registers a registry's scans with their labels through the collection."""

    def __init__(
        self, encoder: Encoder, collection: Collection, folder: Path, batch_size: int, threads: int
    ) -> None:
        self.encoder = encoder
        self.collection = collection
        self.folder = folder
        self.batch_size = batch_size
        self.threads = threads

    def run(
        self, rows: list[Row], report: Report, advance: Callable[[int], object]
    ) -> ImportSummary:
        """Register every row's scan; ``advance(n)`` after each batch of ``n``."""
        counts = {"registered": 0, ALREADY_REGISTERED: 0, REFUSED: 0}
        for batch in self._embedded(rows):
            for row, data, vectors in batch:
                outcome, reason = self._register(row, data, vectors)
                counts[outcome] += 1
                if outcome != "registered":
                    report.add(row, outcome, reason)
            advance(len(batch))
        return ImportSummary(counts["registered"], counts[ALREADY_REGISTERED], counts[REFUSED])

    def _register(self, row: Row, data: bytes, vectors: Vectors | Skipped) -> Skipped:
        if isinstance(vectors, tuple):
            return vectors
        try:
            self.collection.register(data, vectors, row.file, row.label)
        except DuplicateImageError as exc:
            return ALREADY_REGISTERED, exc.for_operator()  # by another process meanwhile
        except ServiceError as exc:
            return REFUSED, exc.for_operator()
        return "registered", ""

    def _embedded(self, rows: list[Row]) -> Iterator[list[tuple[Row, bytes, Vectors | Skipped]]]:
        """Each batch of rows with its bytes and vectors (or why there are none),
        preparing the next batch in worker threads while the model embeds this one."""
        for batch in read_ahead(rows, self.batch_size, self.threads, self._prepare):
            ready = [item for _, (_, item) in batch if isinstance(item, Prepared)]
            concepts: Iterator[NDArray[np.float32]] = iter(
                self.encoder.concepts(np.concatenate([item.pixels for item in ready]))
                if ready
                else []
            )
            yield [
                (
                    row,
                    data,
                    {self.encoder.space.concept: next(concepts), **item.drawing}
                    if isinstance(item, Prepared)
                    else item,
                )
                for row, (data, item) in batch
            ]

    def _prepare(self, row: Row) -> tuple[bytes, Prepared | Skipped]:
        """A scan's bytes and what the model and the store need of it, or why not (a
        scan registered before, by an earlier run, is not embedded again)."""
        try:
            data = (self.folder / row.file).read_bytes()
        except OSError as exc:
            return b"", (REFUSED, str(exc.strerror))
        holder = self.collection.store.find_sha256(sha256_hex(data))
        if holder is not None:
            return data, (ALREADY_REGISTERED, f"the same bytes are registered as {holder.id}")
        try:
            framed, drawing = self.encoder.prepare_drawing(data)
        except ServiceError as exc:
            return data, (REFUSED, exc.for_operator())
        return data, Prepared(self.encoder.model_input(framed), drawing)
