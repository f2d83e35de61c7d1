"""The one API the CLI and the GUI share: the engine over a library, and the scanner,
indexer, watcher, trash and Ask it works with."""
