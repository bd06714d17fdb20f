"""Preparing the model's next batch while it embeds this one: decoding, grid removal and
framing run in worker threads one batch ahead of the model (the indexing's and the
registry import's pipeline), so the model's worker never waits for a batch's files."""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")


def read_ahead(
    items: list[Item],
    batch_size: int,
    threads: int,
    prepare: Callable[[Item], Prepared],
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[list[tuple[Item, Prepared]]]:
    """``items`` in batches of ``batch_size``, each item with what ``prepare`` made of
    it in one of ``threads`` worker threads; the next batch is submitted before this one
    is answered. Stops before a batch when ``should_stop()``; the batches not yet
    started are then cancelled."""
    batches = [items[at : at + batch_size] for at in range(0, len(items), batch_size)]
    if not batches:
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="preprocess") as pool:
        upcoming = [pool.submit(prepare, item) for item in batches[0]]
        try:
            for number, batch in enumerate(batches):
                if should_stop():
                    break
                prepared = upcoming
                if number + 1 < len(batches):
                    upcoming = [pool.submit(prepare, item) for item in batches[number + 1]]
                yield [
                    (item, future.result()) for item, future in zip(batch, prepared, strict=True)
                ]
        finally:
            for future in upcoming:
                future.cancel()
