"""Files to pixels and metadata, without a model: which names are indexed, content
hashes, photo decoding with EXIF, video keyframes and thumbnails."""
