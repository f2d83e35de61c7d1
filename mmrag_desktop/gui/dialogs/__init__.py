"""Dialogs and the first-run wizard. They reach the library only through
:mod:`..adapters`."""
