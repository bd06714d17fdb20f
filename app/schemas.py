"""Pydantic models of every HTTP answer, so ``/docs`` documents them with examples."""

from pydantic import BaseModel, ConfigDict, Field


class SearchResult(BaseModel):
    id: str = Field(description="File name of the collection image.", examples=["imagen1.jpg"])
    similarity: float = Field(
        description="Cosine similarity of the CLIP embeddings, -1 to 1 (1 = identical).",
        examples=[0.92],
    )
    path: str = Field(
        description="Path of the image under IMAGES_DIR as configured.",
        examples=["./example_images/imagen1.jpg"],
    )
    url: str = Field(
        description="Absolute URL of the image, served from /static.",
        examples=["http://localhost:8000/static/imagen1.jpg"],
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
                            "path": "./example_images/imagen1.jpg",
                            "url": "http://localhost:8000/static/imagen1.jpg",
                        }
                    ]
                }
            ]
        }
    )


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    model: str = Field(description="MODEL_NAME in use.", examples=["openai/clip-vit-base-patch32"])
    embedding_dimension: int = Field(examples=[512])
    indexed_images: int = Field(examples=[24])


class ErrorResponse(BaseModel):
    detail: str = Field(examples=["The file is not an image in a supported format."])
