"""The desktop GUI (PySide6): ``mmrag gui`` or ``mmrag-desktop``. A thin layer over the
engine: widgets call :class:`~mmrag_desktop.gui.adapters.bridge.LibraryBridge`, which runs the engine
off the GUI thread and answers with signals."""

from __future__ import annotations

import multiprocessing
import sys
from importlib.resources import files
from pathlib import Path

from ..core.config import APP_NAME


def resource(name: str) -> Path:
    """A file of the top-level ``resources/`` folder (installed as ``mmrag_desktop.resources``)."""
    try:
        return Path(str(files("mmrag_desktop.resources") / name))
    except ModuleNotFoundError:  # an editable install maps no package onto resources/
        return Path(__file__).resolve().parents[2] / "resources" / name


def main(argv: list[str] | None = None, random_weights: bool = False,
         quit_when_shown: bool = False) -> int:
    """Run the app. *argv* may name a photo: the window opens searching for similar ones.
    *quit_when_shown* prints ``shown`` once the window is painted, then quits (the launch
    benchmark times this from process start). Returns the exit code."""
    # a bundled (frozen) app starts the VLM's helper process through its own executable
    multiprocessing.freeze_support()
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from ..core.config import ConfigError, home_dir
    from ..library.facade import Library
    from .adapters.bridge import LibraryBridge
    from .adapters.instance import hand_over
    from .window import MainWindow

    argv = sys.argv[1:] if argv is None else argv
    app = QApplication.instance() or QApplication([sys.argv[0]])
    library = home_dir() / "random-weights" if random_weights else home_dir()
    if not quit_when_shown and hand_over(library, argv):
        print(f"{APP_NAME}: the app is open on this library; it has your request", flush=True)
        return 0
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName(APP_NAME)
    icon = QIcon(str(resource("mmrag-desktop.svg")))
    app.setWindowIcon(icon)
    try:
        engine = Library(random_weights=random_weights, model_process=True)
    except (ConfigError, OSError) as exc:
        QMessageBox.critical(None, APP_NAME, f"The library cannot be opened:\n{exc}")
        return 1
    window = MainWindow(LibraryBridge(engine), icon)
    window.show()
    if quit_when_shown:
        def shown() -> None:
            app.processEvents()  # the first paint
            print("shown", flush=True)
            window.close()
            app.quit()
        QTimer.singleShot(0, shown)
    else:
        QTimer.singleShot(0, window.start)
        QTimer.singleShot(0, lambda: window.open_arguments(argv))
    return app.exec()

