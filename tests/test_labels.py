"""Labels as a registry's clerk uses them: given when registering a brand, returned
wherever the image is, changed with PATCH, searched with ``GET /images/?q=``, and kept
across restarts and reindexing; one name everywhere (the label, else the file name)."""

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import BOTH_STORES, drawing, encode

pytestmark = BOTH_STORES

SPANISH = {"Accept-Language": "es"}


def register(
    client: TestClient, seed: int, label: str | None = None, name: str = "marca.png"
) -> dict[str, object]:
    response = client.post(
        "/images/",
        files={"file": (name, encode(drawing(seed=seed), "PNG"), "image/png")},
        data={} if label is None else {"label": label},
    )
    assert response.status_code == 201, response.text
    image: dict[str, object] = response.json()["image"]
    return image


def test_a_label_given_when_registering_is_returned_wherever_the_image_is(
    client: TestClient,
) -> None:
    image = register(client, 31, "  Reg. 1043 - José Peña  ")
    drawn = encode(drawing(seed=31), "PNG")

    listed = client.get("/images/").json()["images"][0]
    one = client.get(f"/images/{image['id']}").json()
    found = client.post(
        "/search-similar-images/", files={"file": ("q.png", drawn, "image/png")}
    ).json()["results"][0]

    assert image["label"] == image["name"] == "Reg. 1043 - José Peña"
    assert listed["id"] == one["id"] == found["id"] == image["id"]
    assert listed["label"] == one["label"] == found["label"] == "Reg. 1043 - José Peña"
    assert found["name"] == "Reg. 1043 - José Peña"
    unlabelled = register(client, 32, name="sin etiqueta.png")
    assert unlabelled["label"] is None and unlabelled["name"] == "sin etiqueta.png"
    assert client.get("/images/imagen1.jpg").json()["name"] == "imagen1.jpg"


def test_patch_changes_or_removes_a_label_and_refuses_a_long_one(client: TestClient) -> None:
    image = register(client, 33, "Reg. 1")

    changed = client.patch(f"/images/{image['id']}", json={"label": "Reg. 2 - Estancia Ñandú"})
    removed = client.patch(f"/images/{image['id']}", json={"label": ""})
    too_long = client.patch(f"/images/{image['id']}", json={"label": "x" * 201}, headers=SPANISH)
    unknown = client.patch("/images/nothing.png", json={"label": "x"})
    not_json = client.patch(f"/images/{image['id']}", json={"etiqueta": "x"})

    assert changed.status_code == 200
    assert changed.json()["label"] == changed.json()["name"] == "Reg. 2 - Estancia Ñandú"
    assert removed.status_code == 200
    assert removed.json()["label"] is None and removed.json()["name"] == "marca.png"
    assert too_long.status_code == 422
    assert too_long.json()["detail"] == "La etiqueta tiene 201 caracteres; admite como máximo 200."
    assert unknown.status_code == 404
    assert not_json.status_code == 422
    assert client.get(f"/images/{image['id']}").json()["label"] is None
    refused = client.post(
        "/images/",
        files={"file": ("m.png", encode(drawing(seed=34), "PNG"), "image/png")},
        data={"label": "y" * 300},
    )
    assert refused.status_code == 422
    assert client.get("/images/").json()["total"] == 9


def test_patch_needs_write_access(make_client: Callable[..., TestClient]) -> None:
    remote = make_client(client=("203.0.113.7", 40000))

    response = remote.patch("/images/imagen1.jpg", json={"label": "x"})

    assert response.status_code == 403
    assert remote.get("/images/imagen1.jpg").json()["label"] is None


def test_the_filter_finds_images_by_label_file_name_or_id_case_and_accents_aside(
    client: TestClient,
) -> None:
    pena = register(client, 35, "Reg. 1043 - José PEÑA")
    nandu = register(client, 36, "Estancia Ñandú", name="campo.png")
    register(client, 37, name="Peña vieja.png")

    def ids(q: str) -> list[object]:
        body = client.get("/images/", params={"q": q}).json()
        return [image["id"] for image in body["images"]]

    assert ids("pena") == [ids("Peña vieja")[0], pena["id"]]
    assert ids("  NANDU ") == [nandu["id"]]
    assert ids("campo") == [nandu["id"]]
    assert ids("imagen1") == ["imagen1.jpg"]
    assert ids("nothing like it") == []
    paged = client.get("/images/", params={"q": "imagen", "page_size": 3, "page": 2}).json()
    assert (paged["total"], paged["total_pages"], paged["page"]) == (8, 3, 2)
    assert len(paged["images"]) == 3
    assert client.get("/images/", params={"q": "x" * 201}).status_code == 422


def test_labels_survive_a_restart_and_a_reindex(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    image = register(client, 38, "Reg. 77")
    client.patch("/images/imagen1.jpg", json={"label": "Reg. 1 - muestra"})
    client.close()

    again = make_client()
    assert again.post("/reindex").status_code == 200

    assert again.get(f"/images/{image['id']}").json()["label"] == "Reg. 77"
    assert again.get("/images/imagen1.jpg").json()["label"] == "Reg. 1 - muestra"
    assert [i["id"] for i in again.get("/images/", params={"q": "muestra"}).json()["images"]] == [
        "imagen1.jpg"
    ]


def test_labels_survive_a_restart_where_every_file_cannot_be_read(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    client = make_client()
    image = register(client, 39, "Reg. 78 - Ana Ruiz")
    client.close()
    kept = {path: path.read_bytes() for path in images_dir.iterdir()}
    for path in kept:
        path.write_bytes(b"")

    damaged = make_client()
    listed = damaged.get("/images/").json()
    assert listed["total"] == 9
    assert damaged.get(f"/images/{image['id']}").json()["label"] == "Reg. 78 - Ana Ruiz"
    assert damaged.post("/reindex").json()["failed"] == 9
    damaged.close()

    for path, data in kept.items():
        path.write_bytes(data)
    restored = make_client()
    found = restored.post(
        "/search-similar-images/",
        files={"file": ("q.png", encode(drawing(seed=39), "PNG"), "image/png")},
    ).json()["results"][0]
    assert (found["id"], found["label"]) == (image["id"], "Reg. 78 - Ana Ruiz")
    assert restored.get("/images/").json()["total"] == 9


def test_labels_survive_a_restart_with_settings_that_refuse_every_file(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    image = register(client, 40, "Reg. 79")
    client.close()

    refusing = make_client(max_image_pixels=1000, grid_working_side=512)
    assert refusing.get("/images/").json()["total"] == 9
    refusing.close()

    again = make_client()
    assert again.get(f"/images/{image['id']}").json()["label"] == "Reg. 79"
    assert again.get("/health").json()["indexed_images"] == 9


def test_only_a_confirmed_reindex_drops_registered_images_whose_files_cannot_be_read(
    make_client: Callable[..., TestClient], images_dir: Path
) -> None:
    client = make_client()
    image = register(client, 41, "Reg. 80")
    (images_dir / str(image["id"])).write_bytes(b"not an image any more")

    kept = client.post("/reindex").json()
    assert kept["failed"] == 1
    assert client.get(f"/images/{image['id']}").json()["label"] == "Reg. 80"
    dropped = client.post("/reindex", params={"confirm_removals": "true"}).json()
    assert dropped["failed"] == 1
    assert client.get(f"/images/{image['id']}").status_code == 404
