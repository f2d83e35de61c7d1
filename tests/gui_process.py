"""Run as a program by tests/test_gui.py: the window in a fresh process, as `mmrag-desktop`
builds it (the model in its helper process), driven through the first run (a model check
that finds nothing, then an imported weights file), indexing and a search. Prints the
modules of the models' native libraries this process loaded, as JSON: none, if the window
reaches every model through a helper process.

    python tests/gui_process.py WEIGHTS PHOTOS  (MMRAG_HOME set, its config.toml written)
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from mmrag_desktop.bench.gui import wait_until  # noqa: E402
from mmrag_desktop.gui.adapters.bridge import LibraryBridge  # noqa: E402
from mmrag_desktop.gui.dialogs.first_run import ModelPage  # noqa: E402
from mmrag_desktop.gui.window import MainWindow  # noqa: E402
from mmrag_desktop.library.facade import Library  # noqa: E402

NATIVE = ("torch", "torchvision", "open_clip", "onnxruntime", "llama_cpp")


def step(done: bool, what: str) -> None:
    if not done:
        sys.exit(f"timed out: {what}")


def main() -> None:
    weights, photos = sys.argv[1], sys.argv[2]
    app = QApplication([sys.argv[0]])  # noqa: F841 - the windows need it alive
    bridge = LibraryBridge(Library(model_process=True), settle=0.2)
    page = ModelPage(bridge)
    step(wait_until(lambda: "not on this computer" in page.state.text(), 300), "the model check")
    page.import_file(weights)
    step(wait_until(page.isComplete, 300), "the import")
    window = MainWindow(bridge)
    window.show()
    bridge.add_folder(photos)
    window.start()
    step(wait_until(lambda: [(s.photos, s.state) for s in window.folders_panel.states]
                    == [(len(os.listdir(photos)), "up to date")], 600), "indexing")
    window.query.setText("a dog on a beach")
    window.search()
    step(wait_until(lambda: window.searches_done > 0 and window.model.rowCount() > 0, 300),
         "a search")
    print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in NATIVE)))
    window.close()


if __name__ == "__main__":  # a helper process spawned from here imports this file too
    main()
