"""Leaves that every layer may use: settings, paths, text for people, downloads and helper
processes. Imports nothing else of the app."""
