"""The bundle's `mmrag-desktop` executable (PyInstaller runs this as __main__)."""
import sys

from mmrag_desktop.gui import main

sys.exit(main())
