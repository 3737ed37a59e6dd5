"""Honest numbers for encoders: cross-validated kNN, linear probe and clustering scores."""
