"""Client side of the remote backend: ``python -m backend --remote URL --token-file F <command> ...``.

Standard library only (no torch, numpy or rasterio), so QGIS's own Python can run it.
"""
