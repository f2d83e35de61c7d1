"""Prints the bundle's requirements: the app's dependencies from pyproject.toml without the
torch stack (the bundle runs the CLIP model in ONNX Runtime) and UMAP, plus the VLM's, plus
PyInstaller. Used by build.sh and the release workflow: pip install -r <(python this)."""

import re
import tomllib
from pathlib import Path

# The torch stack, and UMAP with numba and llvmlite (a compiler): the bundle's map uses
# principal components.
NOT_BUNDLED = {"torch", "torchvision", "open_clip_torch", "onnx", "umap-learn"}
PYINSTALLER = "pyinstaller>=6.10,<7"

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"] + project["optional-dependencies"]["vlm"]:
    if re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower() not in NOT_BUNDLED:
        print(requirement)
print(PYINSTALLER)
