"""Pydantic models of every HTTP answer, so ``/docs`` documents them with examples."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.encoder import MAX_TEXT_CHARS
from app.ranking import SearchMode
from app.verdict import Verdict


class SearchResult(BaseModel):
    id: str = Field(
        description="The image's id: its file name, percent-encoded where a URL needs it "
        "(marca%20%237.png for a file named 'marca #7.png').",
        examples=["imagen1.jpg"],
    )
    similarity: float = Field(
        description="How alike the two drawings are, the score the list is ordered by, "
        "best first (1 = the same drawing): for a result the verification stage aligned on "
        "the query (shape and hybrid searches, the first RERANK_CANDIDATES results), its "
        "overlap; otherwise the search mode's first-stage score (concept_similarity, "
        "shape_similarity, or HYBRID_CONCEPT_WEIGHT x concept + (1 - "
        "HYBRID_CONCEPT_WEIGHT) x shape), never above an aligned result listed before it.",
        examples=[0.92],
    )
    verdict: Verdict | None = Field(
        default=None,
        description="What the two drawings are to each other, from the verification "
        "stage's coverages: same (the same brand), contains (the query is this brand plus "
        "an addition), contained (this brand is the query plus an addition), similar "
        "(related: look at the overlay) or different. Every verdict but different is a "
        "conflict, listed before the rest. null: not verified (a concept or text search, "
        "or past the first RERANK_CANDIDATES results).",
        examples=["same"],
    )
    distance: float = Field(
        description="1 - similarity (0 = identical), for clients that sort by distance.",
        examples=[0.08],
    )
    concept_similarity: float = Field(
        description="Cosine similarity of the CLIP embeddings.", examples=[0.88]
    )
    shape_similarity: float | None = Field(
        description="Cosine similarity of the shape descriptors (stroke positions and "
        "directions), for the turn that matched; null in a text search (words have no "
        "shape).",
        examples=[0.94],
    )
    turn: str | None = Field(
        description="With turns=true, the turn of the query that matched: upright, rot90, "
        "rot180, rot270 (counter-clockwise), mirror, mirror_rot90, mirror_rot180, "
        "mirror_rot270 (mirrored left-right, then turned); null otherwise.",
        examples=[None],
    )
    registered_covered: float | None = Field(
        default=None,
        description="Verification stage (shape and hybrid searches, the first "
        "RERANK_CANDIDATES results): with the two drawings aligned, the share of the "
        "registered brand's strokes that the query's strokes cover, 0 to 1; null when not "
        "verified. High with query_covered lower: the query is this brand plus something.",
        examples=[0.97],
    )
    query_covered: float | None = Field(
        default=None,
        description="The converse: the share of the query's strokes that the registered "
        "brand's cover. High with registered_covered lower: the registered brand is the "
        "query plus something.",
        examples=[0.81],
    )
    overlap: float | None = Field(
        default=None,
        description="Both coverages in one score (1 = the same drawing; a brand with an "
        "addition scores beside a copy); a verified result's similarity. null when not "
        "verified.",
        examples=[0.92],
    )
    core_match: float | None = Field(
        default=None,
        description="Where either drawing has an addition beside it: how well the one "
        "without its addition matches the other, 0 to 1 (0 when neither has one); null "
        "when not verified.",
        examples=[0.0],
    )
    path: str = Field(
        description="RESULT_PATH=file (default): the image's path under IMAGES_DIR as "
        "configured; RESULT_PATH=url: the same address as url.",
        examples=["./example_images/imagen1.jpg"],
    )
    url: str = Field(
        description="Absolute URL of the image, served from /static.",
        examples=["http://localhost:8000/static/imagen1.jpg"],
    )
    original_filename: str | None = Field(
        description="The uploader's file name; null for files copied into IMAGES_DIR by hand.",
        examples=[None],
    )
    label: str | None = Field(
        description="What the registry's clerk wrote about it (a registration number, an "
        "owner), at most 200 characters; null when none was given.",
        examples=["Reg. 1043 - Juan Pérez"],
    )
    name: str = Field(
        description="What to call it: its label, else its original file name, else its id.",
        examples=["Reg. 1043 - Juan Pérez"],
    )


class CompareResponse(BaseModel):
    """Two drawings aligned: a registered brand and an upload, or another registered one."""

    registered_id: str = Field(description="The registered brand's id.", examples=["marca7.png"])
    other_id: str | None = Field(
        description="The other registered brand's id; null when the other is an upload.",
        examples=[None],
    )
    registered_covered: float = Field(
        description="Share of the registered brand's strokes the other drawing covers, 0-1.",
        examples=[0.97],
    )
    query_covered: float = Field(
        description="Share of the other drawing's strokes the registered brand covers, 0-1.",
        examples=[0.81],
    )
    overlap: float = Field(
        description="Both coverages in one score (1 = the same drawing; a brand with an "
        "addition scores beside a copy): a search's similarity for this pair.",
        examples=[0.92],
    )
    core_match: float = Field(
        description="How well one drawing without the addition beside it matches the "
        "other, 0 to 1 (0 when neither has an addition).",
        examples=[0.0],
    )
    verdict: Verdict = Field(
        description="same, contains (the other drawing is the registered brand plus an "
        "addition), contained (the converse), similar or different: see SearchResult.",
        examples=["same"],
    )
    turn: str = Field(
        description="The other drawing's turn that aligned best (upright unless turns=true).",
        examples=["upright"],
    )
    scale: float = Field(
        description="The registered drawing's scale on the other's framed square.",
        examples=[0.84],
    )
    angle: float = Field(
        description="The registered drawing's rotation, degrees counter-clockwise.",
        examples=[0.0],
    )


class SearchResponse(BaseModel):
    results: list[SearchResult] = Field(description="Best match first.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "id": "imagen1.jpg",
                            "similarity": 0.92,
                            "distance": 0.08,
                            "concept_similarity": 0.88,
                            "shape_similarity": 0.94,
                            "turn": None,
                            "registered_covered": 0.97,
                            "query_covered": 0.88,
                            "overlap": 0.92,
                            "core_match": 0.0,
                            "verdict": "same",
                            "path": "./example_images/imagen1.jpg",
                            "url": "http://localhost:8000/static/imagen1.jpg",
                            "original_filename": None,
                        }
                    ]
                }
            ]
        }
    )


TEXT_EXAMPLE = "a running stick figure with a crossed circle for a head"
# What a text must be, for the OpenAPI schema only: the domain refuses other texts with a
# sentence saying why, clearer than a pattern's name.
TEXT_SCHEMA: dict[str, Any] = {"minLength": 1, "maxLength": MAX_TEXT_CHARS, "pattern": r"\S"}


class TextSearchRequest(BaseModel):
    text: str = Field(
        description="What the drawing shows, in English (CLIP's text tower reads English; "
        f"docs/api.md: Search by words). Up to {MAX_TEXT_CHARS} characters, of which the model "
        "reads the first 77 tokens (about 50 words): text_truncated says when it was cut.",
        examples=[TEXT_EXAMPLE],
        json_schema_extra=TEXT_SCHEMA,
    )
    # Strict, here and below: JSON's true is no top_k, nor false a min_similarity.
    top_k: int | None = Field(
        default=None,
        ge=1,
        strict=True,
        description="How many results at most (default TOP_K; capped at MAX_TOP_K).",
    )
    min_similarity: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        allow_inf_nan=False,
        strict=True,
        description="Leave out images whose similarity to the text is below this. Default "
        "none (-1): CLIP's text-to-image cosines sit between about 0.1 and 0.4, on another "
        "scale than image-to-image ones, so ranking is left to top_k.",
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": TEXT_EXAMPLE, "top_k": 5}]})

    @field_validator("top_k", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        """5.0 is a whole number, as JSON Schema counts it (true stays refused)."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


class TextSearchResponse(SearchResponse):
    text_truncated: bool = Field(
        description="The text had more tokens than the model reads (77): only its "
        "beginning was searched.",
        examples=[False],
    )


class IndexingStatus(BaseModel):
    running: bool = Field(description="A reconciliation is embedding files now.")
    done: int = Field(description="Files embedded so far by the running (or last) one.")
    total: int = Field(description="Files it has to embed.")
    seconds_left: float | None = Field(description="Estimate; null when unknown.")


class SearchDefaults(BaseModel):
    """What an image search uses for what it leaves out, so a client's controls can
    start there."""

    top_k: int = Field(description="TOP_K.", examples=[10])
    max_top_k: int = Field(description="MAX_TOP_K: the most results a search returns.")
    min_similarity: float = Field(description="SIMILARITY_THRESHOLD.", examples=[0.5])
    mode: SearchMode = Field(description="SEARCH_MODE.")


class HealthResponse(BaseModel):
    status: str = Field(
        description="ok: searches are served; indexing: the first indexing is running "
        "and searches answer 503; folder_unavailable: IMAGES_DIR is missing or is not "
        "the collection's folder any more (``problem`` says which), and every write "
        "answers 503 until it is restored.",
        examples=["ok"],
    )
    problem: str | None = Field(
        default=None,
        description="What is wrong, in the client's language, when status says so.",
        examples=[None],
    )
    model: str = Field(description="MODEL_NAME in use.", examples=["openai/clip-vit-base-patch32"])
    inference: str = Field(
        description="What runs the model: onnx (ONNX Runtime), torch (transformers) or int8.",
        examples=["onnx"],
    )
    embedding_dimension: int = Field(examples=[512])
    text_search: bool = Field(
        description="POST /search-by-text is served (TEXT_SEARCH=true).", examples=[True]
    )
    indexed_images: int = Field(examples=[24])
    indexing: IndexingStatus
    search_defaults: SearchDefaults


class StoredImage(BaseModel):
    """An image of the collection, as POST /images/ returns it."""

    id: str = Field(description="Its file name in IMAGES_DIR.", examples=["3f2c0e9b.png"])
    path: str = Field(
        description="As in search results: the file path, or the URL with RESULT_PATH=url.",
        examples=["./example_images/3f2c0e9b.png"],
    )
    url: str = Field(examples=["http://localhost:8000/static/3f2c0e9b.png"])
    sha256: str = Field(description="SHA-256 of the file's bytes (hex).")
    original_filename: str | None = Field(
        description="The uploader's file name; metadata only. Null for files copied "
        "into IMAGES_DIR by hand.",
        examples=["brand-42.png"],
    )
    label: str | None = Field(
        description="What the registry's clerk wrote about it (a registration number, an "
        "owner), at most 200 characters; null when none was given.",
        examples=["Reg. 1043 - Juan Pérez"],
    )
    name: str = Field(
        description="What to call it: its label, else its original file name, else its id.",
        examples=["Reg. 1043 - Juan Pérez"],
    )
    created_at: datetime = Field(
        description="When it joined the collection (UTC); for files copied by hand, "
        "their modification time."
    )


class AddImageResponse(BaseModel):
    image: StoredImage
    similar: list[SearchResult] = Field(
        description="The most similar images already in the collection, best first."
    )


class ImageListItem(BaseModel):
    """An image of the collection, in the field names the existing frontend reads."""

    id: str = Field(examples=["3f2c0e9b.png"])
    image_path: str = Field(examples=["./example_images/3f2c0e9b.png"])
    original_filename: str | None = Field(examples=["brand-42.png"])
    label: str | None = Field(
        description="What the registry's clerk wrote about it (a registration number, an "
        "owner), at most 200 characters; null when none was given.",
        examples=["Reg. 1043 - Juan Pérez"],
    )
    name: str = Field(
        description="What to call it: its label, else its original file name, else its id.",
        examples=["Reg. 1043 - Juan Pérez"],
    )
    sha256_hash: str
    created_at: datetime
    full_url: str = Field(examples=["http://localhost:8000/static/3f2c0e9b.png"])


class ImageListResponse(BaseModel):
    images: list[ImageListItem] = Field(description="Newest first.")
    total: int
    page: int = Field(
        description="The page answered: the one asked for, or the last page when the one "
        "asked for is past the end (then requested_page says which was asked for)."
    )
    requested_page: int = Field(description="The page the request asked for.")
    page_size: int
    total_pages: int


class DeletedResponse(BaseModel):
    deleted: int = Field(description="How many images were removed.", examples=[1])
    deleted_count: int = Field(description="The same number, as the frontend reads it.")
    message: str = Field(
        description="For people, in the request's Accept-Language (Spanish or English).",
        examples=["Deleted imagen1.jpg (id imagen1.jpg)."],
    )


class LabelUpdate(BaseModel):
    """PATCH /images/{id}: the image's new label; null or empty removes it."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(examples=["Reg. 1043 - Juan Pérez"])


class ImageCountResponse(BaseModel):
    count: int = Field(description="Images in the collection.", examples=[24])


class ReindexResponse(BaseModel):
    added: int = Field(
        description="Files new to the index and stored now, embedded or reusing a vector."
    )
    updated: int = Field(description="Files whose bytes changed, stored again.")
    removed: int = Field(description="Files gone from IMAGES_DIR, dropped from the index.")
    unchanged: int
    failed: int = Field(description="Unreadable files, skipped (see the log).")
    pending: int = Field(
        description="New or changed files not embedded yet (the reconciliation was stopped)."
    )
    indexed_images: int
    withheld: int = Field(
        description="Files gone from IMAGES_DIR whose records were kept: too many to remove "
        "unconfirmed (retry with confirm_removals=true if they were removed on purpose)."
    )


class ErrorResponse(BaseModel):
    detail: str = Field(examples=["The file is not an image in a supported format."])


class UnprocessableResponse(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="A sentence saying what is wrong with the text, or FastAPI's list of "
        "problems with the body or the parameters (each with loc, msg, type).",
        examples=["The text is empty: describe the drawing in words."],
    )
