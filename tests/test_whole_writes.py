"""Whole writes and the folder guard, on both stores: a write the store refuses leaves
nothing behind, one a killed process left halfway is settled by the store's record at
the next start, and a missing, empty or emptied IMAGES_DIR removes no record."""

import errno
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from app.collection import clean_filename
from app.errors import ConfigError
from app.storage.image_folder import DELETING_PREFIX, INCOMING_PREFIX, ImageFolder
from tests.conftest import BOTH_STORES, drawing, encode, new_database

pytestmark = BOTH_STORES

A_MINUTE_AGO = time.time() - 60


def _visible(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir() if not path.name.startswith(".")}


@contextmanager
def _catalog_locked(index_dir: Path) -> Iterator[None]:
    """SQLite's write lock held by another connection (another process) meanwhile."""
    blocker = sqlite3.connect(index_dir / "catalog.sqlite3", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        blocker.rollback()
        blocker.close()


def _names(folder: Path) -> list[str]:
    return [path.name for path in folder.iterdir()]


def _aged(path: Path) -> None:
    os.utime(path, (A_MINUTE_AGO, A_MINUTE_AGO))


def test_a_delete_killed_after_withdrawing_its_file_is_undone_at_start(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    make_client().close()
    withdrawn = images_dir / f"{DELETING_PREFIX}imagen3.jpg"
    (images_dir / "imagen3.jpg").replace(withdrawn)  # the record is still there
    _aged(withdrawn)

    client = make_client()

    assert (images_dir / "imagen3.jpg").is_file()
    assert not withdrawn.exists()
    assert client.get("/images/imagen3.jpg").status_code == 200
    assert client.get("/images/").json()["total"] == 8


def test_a_delete_killed_after_its_commit_is_finished_at_start(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    client = make_client()
    data = (images_dir / "imagen3.jpg").read_bytes()
    assert client.delete("/images/imagen3.jpg").status_code == 200
    client.close()
    withdrawn = images_dir / f"{DELETING_PREFIX}imagen3.jpg"
    withdrawn.write_bytes(data)  # as if killed before the withdrawn file was purged
    _aged(withdrawn)

    client = make_client()

    assert not withdrawn.exists() and not (images_dir / "imagen3.jpg").exists()
    assert client.get("/images/imagen3.jpg").status_code == 404
    assert client.get("/images/").json()["total"] == 7


def test_an_add_killed_after_its_commit_is_published_at_start_with_its_file_name(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    client = make_client()
    data = encode(drawing(seed=5), "PNG")
    added = client.post("/images/", files={"file": ("Marca 12.png", data)}).json()["image"]
    client.close()
    image_id = added["id"]
    staged = images_dir / f"{INCOMING_PREFIX}{image_id}"
    (images_dir / image_id).replace(staged)  # as if killed before the file was published
    _aged(staged)

    client = make_client()

    assert (images_dir / image_id).read_bytes() == data
    assert client.get(f"/images/{image_id}").json()["original_filename"] == "Marca 12.png"


def test_an_add_the_store_refuses_leaves_no_file_and_never_appears_later(
    make_client: Callable[..., TestClient], images_dir: Path, store: str, index_dir: Path
) -> None:
    if store != "embedded":
        pytest.skip("SQLite's write lock; Postgres restarting is tested below")
    client = make_client()
    before = {path.name for path in images_dir.iterdir()}
    with _catalog_locked(index_dir):
        response = client.post(
            "/images/", files={"file": ("refused.png", encode(drawing(seed=9), "PNG"))}
        )

    assert response.status_code == 503
    assert {path.name for path in images_dir.iterdir()} == before
    client.close()
    assert make_client().get("/images/").json()["total"] == 8


def test_a_delete_the_store_refuses_keeps_the_image_whole(
    make_client: Callable[..., TestClient], images_dir: Path, store: str, index_dir: Path
) -> None:
    if store != "embedded":
        pytest.skip("SQLite's write lock")
    client = make_client()
    with _catalog_locked(index_dir):
        response = client.delete("/images/imagen2.jpg")

    assert response.status_code == 503
    assert (images_dir / "imagen2.jpg").is_file()
    assert not any(name.startswith(DELETING_PREFIX) for name in _names(images_dir))
    assert client.get("/static/imagen2.jpg").status_code == 200
    assert client.get("/images/imagen2.jpg").status_code == 200


def test_upload_file_names_are_stored_without_control_characters() -> None:
    assert clean_filename("marca\x00\n\u202e7.png ") == "marca7.png"
    assert clean_filename("\x00\x1b") is None


def test_a_missing_images_dir_refuses_to_start_and_removes_no_record(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    make_client().close()
    moved = images_dir.with_name("elsewhere")
    images_dir.rename(moved)

    with pytest.raises(ConfigError, match=r"IMAGES_DIR=.* does not exist"):
        make_client()

    assert not images_dir.exists()
    moved.rename(images_dir)
    assert make_client().get("/images/").json()["total"] == 8


def test_an_empty_images_dir_refuses_to_start_unless_removals_are_confirmed(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    make_client().close()
    kept = images_dir.with_name("kept")
    shutil.copytree(images_dir, kept)
    for name in _visible(images_dir):
        (images_dir / name).unlink()

    with pytest.raises(ConfigError, match=r"IMAGES_DIR=.* holds no images"):
        make_client()
    assert make_client(confirm_removals=True).get("/images/").json()["total"] == 0


def test_another_collections_folder_refuses_to_start(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    make_client().close()
    (images_dir / ".collection-id").write_text("someone-else\n")

    with pytest.raises(ConfigError, match="belongs to another collection"):
        make_client()


def test_a_folder_moved_away_while_running_refuses_every_write_and_health_says_why(
    make_client: Callable[..., TestClient], images_dir: Path, tmp_path: Path
) -> None:
    client = make_client()
    elsewhere = tmp_path / "moved"
    images_dir.rename(elsewhere)

    spanish = {"Accept-Language": "es"}
    upload = {"file": ("n.png", encode(drawing(seed=61), "PNG"), "image/png")}
    refused = [
        client.delete("/images/imagen1.jpg", headers=spanish),
        client.post("/images/", files=upload, headers=spanish),
        client.delete("/images/", params={"confirm": "true"}, headers=spanish),
        client.get("/static/imagen2.jpg", headers=spanish),
        client.post("/reindex", headers=spanish),
    ]
    health = client.get("/health", headers=spanish).json()

    assert [response.status_code for response in refused] == [503] * 5
    assert all("Falta IMAGES_DIR" in response.json()["detail"] for response in refused)
    assert health["status"] == "folder_unavailable"
    assert "Falta IMAGES_DIR" in health["problem"]
    assert client.get("/images/").json()["total"] == 8

    elsewhere.rename(images_dir)
    assert client.get("/health").json()["status"] == "ok"
    assert client.delete("/images/imagen1.jpg").status_code == 200
    assert client.post("/reindex").json()["added"] == 0
    assert client.get("/images/imagen1.jpg").status_code == 404
    assert not (images_dir / "imagen1.jpg").exists()


def test_a_folder_swapped_for_another_collections_while_running_refuses_writes(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    client = make_client()
    (images_dir / ".collection-id").write_text("someone-else\n")

    deleted = client.delete("/images/imagen1.jpg")

    assert deleted.status_code == 503
    assert "no longer this collection's folder" in deleted.json()["detail"]
    assert client.get("/health").json()["status"] == "folder_unavailable"
    assert (images_dir / "imagen1.jpg").is_file()


def _lose_the_catalog(
    store: str, index_dir: Path, request: pytest.FixtureRequest
) -> dict[str, object]:
    """Settings for a start whose store no longer holds the collection's catalog: the
    embedded catalog deleted, or a new database."""
    if store == "embedded":
        shutil.rmtree(index_dir)
        return {}
    return {"database_url": new_database(request.getfixturevalue("postgres"))}


def test_a_lost_catalog_refuses_to_start_until_a_rebuild_is_confirmed(
    make_client: Callable[..., TestClient],
    store: str,
    index_dir: Path,
    request: pytest.FixtureRequest,
) -> None:
    client = make_client()
    labelled = client.patch("/images/imagen1.jpg", json={"label": "Reg. 12"})
    assert labelled.status_code == 200
    client.close()
    lost = _lose_the_catalog(store, index_dir, request)

    with pytest.raises(ConfigError, match=r"catalog is not in the store.*CONFIRM_REBUILD=true"):
        make_client(**lost)

    rebuilt = make_client(confirm_rebuild=True, **lost)
    assert rebuilt.get("/images/").json()["total"] == 8
    assert rebuilt.get("/images/imagen1.jpg").json()["label"] is None
    rebuilt.close()
    assert make_client(**lost).get("/health").json()["indexed_images"] == 8


def test_a_folder_emptied_while_running_removes_nothing_until_confirmed(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    client = make_client()
    for name in _visible(images_dir):
        (images_dir / name).unlink()

    withheld = client.post("/reindex").json()
    assert (withheld["removed"], withheld["withheld"]) == (0, 8)
    assert client.get("/images/").json()["total"] == 8

    confirmed = client.post("/reindex", params={"confirm_removals": "true"}).json()
    assert (confirmed["removed"], confirmed["withheld"]) == (8, 0)
    assert client.get("/images/").json()["total"] == 0


def test_a_few_files_removed_by_hand_are_dropped_without_confirmation(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    client = make_client()
    (images_dir / "imagen1.jpg").unlink()

    report = client.post("/reindex").json()

    assert (report["removed"], report["withheld"]) == (1, 0)
    assert client.get("/images/").json()["total"] == 7


def test_a_new_images_dir_gets_the_seed_images_at_its_first_start(
    make_client: Callable[..., TestClient], images_dir: Path, tmp_path: Path
) -> None:
    new = tmp_path / "volume" / "images"

    client = make_client(images_dir=new, seed_images_dir=images_dir)

    assert client.get("/images/").json()["total"] == 8
    assert _visible(new) == _visible(images_dir)
    assert not [name for name in _names(new) if name.startswith(".seeding-")]


def test_an_emptied_images_dir_is_not_seeded_but_refused(
    make_client: Callable[..., TestClient], images_dir: Path, tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(images_dir, seeds)
    make_client(seed_images_dir=seeds).close()
    for name in _visible(images_dir):
        (images_dir / name).unlink()

    with pytest.raises(ConfigError, match=r"IMAGES_DIR=.* holds no images"):
        make_client(seed_images_dir=seeds)
    assert _visible(images_dir) == set()


def test_a_folder_marked_by_another_replica_first_keeps_that_replicas_id(
    images_dir: Path,
) -> None:
    folder = ImageFolder(images_dir)

    assert folder.mark("first") == "first"
    assert folder.mark("second") == "first"
    assert folder.collection_id() == "first"
    assert [name for name in _names(images_dir) if name.startswith(".collection-id")] == [
        ".collection-id"
    ]


@contextmanager
def _database_down(database_url: str) -> Iterator[None]:
    """The service's database gone as in a restart of Postgres: every connection to it
    dropped and new ones refused meanwhile, then accepted again."""
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    maintenance = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            yield
        finally:
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
            )


def _until_applied(write: Callable[[], int]) -> int:
    """A client retrying a write its 503 told it to retry, for up to a minute (the
    connection pool reconnects with backoff)."""
    deadline = time.monotonic() + 60
    status = write()
    while status == 503 and time.monotonic() < deadline:
        time.sleep(1)
        status = write()
    return status


@contextmanager
def _postgres_down_at(
    client: TestClient, step: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Postgres gone (``_database_down``) from the moment the service reaches the
    store's ``step`` (``save_upload``, ``delete``) in the middle of a write, until the
    block ends."""
    store = client.app.state.service.store  # type: ignore[attr-defined]
    real = getattr(store, step)
    with ExitStack() as outage:

        def failing(*args: object) -> object:
            outage.enter_context(_database_down(database_url))
            return real(*args)

        monkeypatch.setattr(store, step, failing)
        yield
    monkeypatch.undo()


def _hidden_settled(folder: Path) -> bool:
    """Whether the service settled a write's hidden file once Postgres was back (its
    connection pool reconnects with a backoff that grows during the outage: seconds)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not [n for n in _names(folder) if n.startswith((INCOMING_PREFIX, DELETING_PREFIX))]:
            return True
        time.sleep(0.2)
    return False


def test_an_add_when_postgres_goes_down_before_its_commit_is_refused_whole(
    make_client: Callable[..., TestClient],
    images_dir: Path,
    store: str,
    store_settings: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if store != "postgres":
        pytest.skip("the embedded store's counterpart holds SQLite's write lock")
    client = make_client()
    visible = _visible(images_dir)
    upload = {"file": ("Marca 31.png", encode(drawing(seed=31), "PNG"), "image/png")}

    with _postgres_down_at(client, "save_upload", store_settings["DATABASE_URL"], monkeypatch):
        refused = client.post("/images/", files=upload)
        # The store cannot say whether it committed: the staged file waits, hidden.
        assert _visible(images_dir) == visible
        assert [name for name in _names(images_dir) if name.startswith(INCOMING_PREFIX)]

    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert _hidden_settled(images_dir)  # discarded: the store holds no record of it
    assert _visible(images_dir) == visible
    assert client.get("/images/").json()["total"] == 8
    assert client.post("/images/", files=upload).status_code == 201
    client.close()
    listed = make_client().get("/images/").json()
    assert listed["total"] == 9
    names = [image["original_filename"] for image in listed["images"]]
    assert names.count("Marca 31.png") == 1
    assert _visible(images_dir) == {image["id"] for image in listed["images"]}


def test_a_delete_when_postgres_goes_down_before_its_commit_keeps_the_image_whole(
    make_client: Callable[..., TestClient],
    images_dir: Path,
    store: str,
    store_settings: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if store != "postgres":
        pytest.skip("the embedded store's counterpart holds SQLite's write lock")
    client = make_client()

    with _postgres_down_at(client, "delete", store_settings["DATABASE_URL"], monkeypatch):
        refused = client.delete("/images/imagen2.jpg")
        assert (images_dir / f"{DELETING_PREFIX}imagen2.jpg").is_file()  # waiting, hidden

    assert refused.status_code == 503
    assert _hidden_settled(images_dir)  # restored: the store still holds its record
    assert client.get("/static/imagen2.jpg").status_code == 200
    assert client.get("/images/imagen2.jpg").status_code == 200
    assert client.delete("/images/imagen2.jpg").status_code == 200
    client.close()
    restarted = make_client()
    assert restarted.get("/images/imagen2.jpg").status_code == 404
    assert restarted.get("/images/").json()["total"] == 7
    assert not (images_dir / "imagen2.jpg").exists()


def test_a_write_while_postgres_is_down_is_refused_before_it_starts(
    make_client: Callable[..., TestClient],
    images_dir: Path,
    store: str,
    store_settings: dict[str, str],
) -> None:
    if store != "postgres":
        pytest.skip("Postgres")
    client = make_client()
    names = sorted(_names(images_dir))
    upload = {"file": ("Marca 33.png", encode(drawing(seed=33), "PNG"), "image/png")}

    with _database_down(store_settings["DATABASE_URL"]):
        answers = [client.post("/images/", files=upload), client.delete("/images/imagen2.jpg")]
        assert sorted(_names(images_dir)) == names

    assert [answer.status_code for answer in answers] == [503, 503]
    assert _until_applied(lambda: client.post("/images/", files=upload).status_code) == 201
    assert client.get("/images/").json()["total"] == 9


def test_a_disk_full_while_the_upload_is_written_leaves_nothing_and_says_so(
    make_client: Callable[..., TestClient], images_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    before = sorted(_names(images_dir))
    real_write = os.write

    def write_until_full(descriptor: int, data: bytes | memoryview) -> int:
        if INCOMING_PREFIX not in Path(f"/proc/self/fd/{descriptor}").readlink().name:
            return real_write(descriptor, data)
        if len(data) > 100:  # the first part fits; the rest finds the disk full
            return real_write(descriptor, data[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    upload = {"file": ("Marca 32.png", encode(drawing(seed=32), "PNG"), "image/png")}
    monkeypatch.setattr(os, "write", write_until_full)  # the folder's writes go through it
    full = client.post("/images/", files=upload)
    monkeypatch.undo()

    assert full.status_code == 507
    assert "IMAGES_DIR is full" in full.json()["detail"]
    assert sorted(_names(images_dir)) == before
    assert client.get("/images/").json()["total"] == 8
    assert client.post("/images/", files=upload).status_code == 201
    client.close()
    assert make_client().get("/images/").json()["total"] == 9
