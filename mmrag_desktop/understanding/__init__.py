"""What is learned about a photo after it is embedded: the pass that runs the
analyses, the text in it (OCR), its place, a caption and structured extraction."""
