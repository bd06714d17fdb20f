"""Image-similarity search over CLIP embeddings of grid-free drawings."""
