"""Terraprobe backend: remote-sensing foundation models over rasters.

Runs as its own process (``python -m backend ...``) and never imports qgis.
"""

__version__ = "0.1.0"
