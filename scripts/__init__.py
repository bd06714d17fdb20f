"""Generators: sample images, README figures, a minimal CLIP tokenizer."""
