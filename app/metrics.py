"""The service's own Prometheus metrics (prometheus-client, default registry), beside
the per-route request counts and latencies that prometheus-fastapi-instrumentator adds
in ``app.main``. Served at ``GET /metrics``."""

from prometheus_client import Counter, Gauge, Histogram

MODEL_BATCH_IMAGES = Histogram(
    "image_search_model_batch_images",
    "Images, or texts, per model call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
MODEL_BATCH_SECONDS = Histogram(
    "image_search_model_batch_seconds",
    "Seconds per model call.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SEARCHES_IN_PROGRESS = Gauge(
    "image_search_searches_in_progress", "Searches holding a slot (at most SEARCH_QUEUE_SIZE)."
)
SEARCHES_REFUSED = Counter(
    "image_search_searches_refused_total", "Searches answered 503 because every slot was taken."
)
IMAGES_INDEXED = Gauge("image_search_images_indexed", "Images searchable now.")
INDEXING_DONE = Gauge("image_search_indexing_done", "Files embedded by the running reconciliation.")
INDEXING_TOTAL = Gauge("image_search_indexing_total", "Files the running reconciliation embeds.")
DECODE_REFUSALS = Counter(
    "image_search_decode_refusals_total",
    "Images refused while decoding, by reason (invalid, unsupported_format, too_large).",
    ["reason"],
)
