"""Inference engine: inputs on one grid, tiled encoding, embedding rasters, PCA preview, cache."""
