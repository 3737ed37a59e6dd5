"""What crosses the plugin/backend boundary, in pure Python (no torch, numpy, rasterio or qgis).

Both halves import this package: the backend to build its command line and check values, the
plugin to offer the same choices in the dock and in Processing. Keep it free of heavy imports.

* ``units``: the radiometric units an optical or radar raster can be declared in.
* ``sensors``: sensor presets (band names, centre wavelengths, radiometry).
"""
