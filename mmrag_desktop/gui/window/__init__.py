"""The top of the GUI: the main window (:mod:`.main_window`) and its menus."""

from .main_window import MainWindow

__all__ = ["MainWindow"]
