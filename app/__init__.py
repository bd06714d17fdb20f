"""Image-similarity search over CLIP embeddings of grid-free drawings."""

# The one version number: the app's OpenAPI document and pyproject.toml read it.
__version__ = "1.1.0"
