"""Terraprobe QGIS plugin entry point (QGIS calls :func:`classFactory`)."""


def classFactory(iface):
    """Create the plugin for QGIS's interface ``iface``."""
    from .plugin.terraprobe_plugin import TerraprobePlugin

    return TerraprobePlugin(iface)
