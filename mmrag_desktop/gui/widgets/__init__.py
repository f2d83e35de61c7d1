"""The window's parts: results, the timeline, the folders panel, Ask, photo input
and the text and desktop helpers they share. They reach the library only through
:mod:`..adapters`."""
