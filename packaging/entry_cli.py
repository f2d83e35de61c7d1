"""The bundle's `mmrag` executable (PyInstaller runs this as __main__)."""
import sys

from mmrag_desktop.cli import main

sys.exit(main())
