"""Renders resources/mmrag-desktop.svg into the icon files the bundles need, beside this
script: mmrag-desktop.ico (Windows executable and installer) and mmrag-desktop.icns (macOS
app). Qt renders the SVG; Pillow writes both formats. Run by the release workflow."""

import io
import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent
SIDE = 1024

app = QGuiApplication(sys.argv[:1])
renderer = QSvgRenderer(str(HERE.parent / "resources" / "mmrag-desktop.svg"))
image = QImage(SIDE, SIDE, QImage.Format.Format_ARGB32)
image.fill(0)
painter = QPainter(image)
renderer.render(painter)
painter.end()
buffer = QBuffer()
buffer.open(QIODevice.OpenModeFlag.WriteOnly)
image.save(buffer, "PNG")
icon = Image.open(io.BytesIO(bytes(buffer.data())))
icon.save(HERE / "mmrag-desktop.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
icon.save(HERE / "mmrag-desktop.icns")
print(HERE / "mmrag-desktop.ico", HERE / "mmrag-desktop.icns")
