"""Prints the bundle's requirements: the app's dependencies from pyproject.toml without the
torch stack (the bundle runs the CLIP model in ONNX Runtime), plus the VLM's, plus
PyInstaller. Used by build.sh and the release workflow: pip install -r <(python this)."""

import re
import tomllib
from pathlib import Path

TORCH_STACK = {"torch", "torchvision", "open_clip_torch", "onnx"}
PYINSTALLER = "pyinstaller>=6.10,<7"

project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"] + project["optional-dependencies"]["vlm"]:
    if re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower() not in TORCH_STACK:
        print(requirement)
print(PYINSTALLER)
