"""Makes what packaging/smoke.sh feeds a bundle, with the development venv (torch):
OUT/export/  an ONNX export of the tests' tiny random-weight CLIP model (export-onnx's output)
OUT/hub/     the same model published as rclip publishes the default model (its repository
             and folder), for tests/hub_server.py to serve as a Hugging Face mirror
OUT/vlm/     the tests' VLM pair: the real gemma-3-270m GGUF and a random-weight mmproj
OUT/clip.mp4 a 6-second video of coco-mini's 31st and 32nd photos (3 s each), by PyAV
OUT/eiffel.jpg coco-mini's 40th photo with the GPS position of the Eiffel Tower
OUT/photo.heic coco-mini's 41st photo as HEIC (written by pillow-heif; the bundle has pi-heif)
and prints the export's model id. Usage: python packaging/smoke_fixtures.py OUT"""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pillow_heif  # noqa: E402
from conftest import coco_photos, encode_video, with_gps, write_tiny_model  # noqa: E402
from PIL import Image  # noqa: E402
from vlm_fixture import gemma_gguf, tiny_mmproj  # noqa: E402

from model_layouts import write_rclip  # noqa: E402

from mmrag_desktop.clip import catalogue  # noqa: E402
from mmrag_desktop.clip.onnx_backend import export  # noqa: E402
from mmrag_desktop.core.config import Config  # noqa: E402
from mmrag_desktop.clip.embedder import Embedder  # noqa: E402

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "tiny").mkdir(exist_ok=True)
model_config, weights = write_tiny_model(out / "tiny")
config = Config(model="mmrag-tiny", pretrained="", weights=str(weights),
                model_config=str(model_config))
made = export(Embedder(config, out / "maker").torch_backend(), out / "export")
default = catalogue.find(catalogue.DEFAULT)
write_rclip(weights, out / "hub", default.repo, default.folder)
(out / "vlm").mkdir(exist_ok=True)
shutil.copy(gemma_gguf(), out / "vlm" / "model.gguf")
shutil.copy(tiny_mmproj(), out / "vlm" / "mmproj.gguf")
encode_video(out / "clip.mp4", coco_photos()[30:32], seconds=3.0)
with_gps(coco_photos()[39], out / "eiffel.jpg", 48.8584, 2.2945)
with Image.open(coco_photos()[40]) as image:
    pillow_heif.from_pillow(image.convert("RGB")).save(out / "photo.heic", quality=80)
print(made)
