"""Measuring: everything behind `mmrag bench` and `mmrag eval`. The product never
imports it."""
