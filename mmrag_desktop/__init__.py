"""mmrag-desktop: search your own photos by description or example, offline."""

__version__ = "0.1.0"
