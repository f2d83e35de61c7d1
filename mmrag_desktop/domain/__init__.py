"""The app's vocabulary and its pure rules: queries and filters, results, the timeline,
duplicates, concepts, folders' states, the analyses, answers and extraction schemas. Plain
Python and numpy, no files or models; the GUI's widgets may import it."""
