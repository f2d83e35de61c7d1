"""Caches rebuilt from the store and checked against it on open: the HNSW indexes of
photos, keyframes and captions, BM25 keyword search (FTS5) and the map of the library."""
