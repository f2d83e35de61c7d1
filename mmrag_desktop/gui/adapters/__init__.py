"""The GUI's only way into the library: the bridge (an Library in Qt signals),
background operations and the thumbnail loader."""
