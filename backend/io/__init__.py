"""Raster and vector input/output: opening, alignment, windows, atomic writes."""
