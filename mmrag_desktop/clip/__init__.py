"""The CLIP model: which weights a library was made with, where they come from (a local
file, the Hugging Face hub, an ONNX export), the torch and ONNX Runtime backends, precision,
and the helper process the GUI embeds through."""
