"""Pretraining data: paired S1/S2 tiles or co-registered scenes, read as random chips.

Data config (``--data-config cfg.json``; every key optional)::

    {
      "modalities": {
        "sar":     {"bands": ["VV", "VH"], "mean": [...], "std": [...]},
        "optical": {"bands": ["B01", ..., "B12"], "mean": [...], "std": [...]}
      },
      "ssl4eo_optical_product": "s2c",
      "data": ["path/or/scene-pair", ...]
    }

Band lists are in model order; statistics are raw raster units (``python -m backend stats``
computes them). Without a config: ``sar`` = VV, VH and ``optical`` = the 12 CROMA S2 bands.
Modality names other than ``sar``/``optical`` are allowed (for objectives that use other
sensors); ``sar`` means Sentinel-1-like files and everything else optical-like files.

Sources (``DATA`` arguments, any mix):

* an SSL4EO-S12-like folder: ``s1/<loc>/<product>/VV.tif, VH.tif`` and ``s2c`` (or ``s2a``,
  ``s2``) ``/<loc>/<date>/B1.tif ... B12.tif``; S1 products are paired with the S2 date
  nearest in time;
* a BigEarthNet-like folder: S1 patch folders whose ``*_labels_metadata.json`` names the
  ``corresponding_s2_patch`` folder (found anywhere under the given folders);
* a folder of co-registered scene pairs ``*S1*.tif`` / ``*S2*.tif`` (same name but S1 -> S2),
  or an explicit pair ``RADAR.tif,OPTICAL.tif`` (for other modality names:
  ``name=PATH,name=PATH``).

Per-band files at 20/60 m are resampled (bilinear) onto the finest grid of the optical
modality; the second modality of a scene pair is warped onto the first's grid with a
``WarpedVRT``. Multi-band files find their bands by description (``B1``, ``B8A``, ``VV``...),
extra bands (B10) are dropped by name. Only windows are ever read.

Sampling is a pure function of ``(seed, item)``: item ``k`` of the stream (``k = step *
global_batch + rank * local_batch + i``) is chip ``k % epoch_len`` of the permutation of epoch
``k // epoch_len`` (seeded by ``(seed, epoch)``), with crop offset and flips drawn from a
generator seeded by ``(seed, k)``. Workers therefore need no state, and resuming at step ``s``
reproduces the exact batches of an uninterrupted run.

Batch format (what objectives receive, after :func:`collate`): a dict with

* one float32 tensor ``[B, C, H, W]`` per modality (``"sar"``, ``"optical"``...), normalised
  with the config statistics to [0, 1] (``clip((x - (mean - 2 std)) / (4 std), 0, 1)``);
  invalid pixels (NaN or the file's nodata) are set to the band mean before normalising;
* ``"item"``: int64 ``[B]`` stream index of each chip; ``"source"``: int64 ``[B]`` index of the
  tile/scene pair in :attr:`PairedChipDataset.sources`.

Public API: :class:`DataConfig`, :func:`discover_sources`, :class:`PairedChipDataset`,
:class:`StreamBatchSampler`, :func:`collate`, :func:`make_loader`, :func:`compute_statistics`,
:func:`resolve_data_config`, :func:`canonical_band` (an alias of
:func:`backend.io.bands.canonical_band_name`), re-exported here from the modules of this package:

* :mod:`~backend.training.data.config`: the data config and its command-line overrides;
* :mod:`~backend.training.data.layouts`: the dataset layouts (candidate samples, not yet opened);
* :mod:`~backend.training.data.validation`: opening, band mapping and overlap of a candidate;
* :mod:`~backend.training.data.discovery`: :func:`discover_sources` (layouts + validation);
* :mod:`~backend.training.data.sources` and :mod:`~backend.training.data.grid`: what a source is;
* :mod:`~backend.training.data.handles` and :mod:`~backend.training.data.chips`: reading windows;
* :mod:`~backend.training.data.dataset`, :mod:`~backend.training.data.sampler`,
  :mod:`~backend.training.data.loader`: the chip stream, its batches and the DataLoader;
* :mod:`~backend.training.data.statistics`: per-band statistics for ``stats``.
"""

from backend.training.data.chips import normalize_chip, read_window
from backend.training.data.config import (
    DEFAULT_BANDS,
    DataConfig,
    ModalityData,
    canonical_band,
    resolve_data_config,
)
from backend.training.data.dataset import PairedChipDataset
from backend.training.data.discovery import DiscoveryReport, discover_sources
from backend.training.data.grid import PortableGrid
from backend.training.data.layouts import _band_token  # noqa: F401  (tests check the file-name band token)
from backend.training.data.loader import collate, make_loader
from backend.training.data.sampler import StreamBatchSampler
from backend.training.data.sources import BandRef, PairedSource
from backend.training.data.statistics import compute_statistics
from backend.training.data.validation import MIN_TILE_OVERLAP, S2_L1C_ORDER

__all__ = [
    "DEFAULT_BANDS",
    "MIN_TILE_OVERLAP",
    "S2_L1C_ORDER",
    "BandRef",
    "DataConfig",
    "DiscoveryReport",
    "ModalityData",
    "PairedChipDataset",
    "PairedSource",
    "PortableGrid",
    "StreamBatchSampler",
    "canonical_band",
    "collate",
    "compute_statistics",
    "discover_sources",
    "make_loader",
    "normalize_chip",
    "read_window",
    "resolve_data_config",
]
