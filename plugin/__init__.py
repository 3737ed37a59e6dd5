"""QGIS side of Terraprobe (PyQGIS + PyQt5 only; the backend runs as a separate process)."""
