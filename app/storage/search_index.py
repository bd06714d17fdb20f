"""Limits of an approximate (HNSW) search index, shared by the settings and both stores
(FAISS ``HNSW<M>`` on the embedded store, pgvector's HNSW on Postgres)."""

# HNSW explores this many candidates per query by default (HNSW_EF_SEARCH; FAISS's
# default of 16 misses neighbours once top_k approaches it); exact indexes ignore it.
HNSW_EF_SEARCH = 128
# pgvector's largest hnsw.ef_search; one setting serves both stores.
MAX_EF_SEARCH = 1000
