"""``version``: report backend, torch and device facts (used by the plugin's "Check backend")."""

from __future__ import annotations

import argparse
import platform
import sys

from backend import __version__
from backend.events import Reporter


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    import numpy
    import rasterio
    import torch

    cuda = torch.cuda.is_available()
    stats = {
        "backend": __version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda else [],
        "default_device": "cuda" if cuda else "cpu",
        "cuda_memory_gb": [round(torch.cuda.get_device_properties(i).total_memory / 1e9, 1)
                           for i in range(torch.cuda.device_count())] if cuda else [],
        "torch_cuda": torch.version.cuda,
        "platform": platform.platform(),
    }
    reporter.result({}, stats)
