"""Packs the ONNX export of the configured weights (made by `mmrag models export-onnx`) for
publishing, with its manifest entry: python packaging/publish_export.py OUT LICENCE.
Run by the release workflow's onnx-exports job, in an install with torch and the weights."""

import sys
from pathlib import Path

from mmrag_desktop.clip.onnx_backend import export_folder
from mmrag_desktop.core.config import home_dir, load_config
from mmrag_desktop.clip.model_files import configured_model_id
from mmrag_desktop.clip.hub import hub_repo
from mmrag_desktop.clip.onnx_download import pack

out, licence = Path(sys.argv[1]), sys.argv[2]
home = home_dir()
config = load_config(home)
folder = export_folder(home, configured_model_id(config, home))
source = f"https://huggingface.co/{hub_repo(config)}"
entry = pack(folder, out, config.model, config.pretrained, source, licence)
print(f"{out / entry.file}: {entry.size / 1e6:.0f} MB, sha256 {entry.sha256}")
