"""SQLite, the truth of a library (library.db): the only SQL of the app, and the lock
that lets one process write."""
