"""mmrag-desktop: search your own photos by description or example, offline."""

import os

# ONNX Runtime (1.32) writes a device id and a queue of telemetry events (OS, working folder)
# to ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ unless this is set before it is first
# imported. Every process of the app imports this package first (helper processes too, and
# they inherit the environment), so nothing of it is collected or written.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
