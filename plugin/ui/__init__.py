"""Widgets of the Terraprobe dock."""
