"""Why an action cannot run yet, in the analyst's words (pure; the dock shows it on the buttons)."""

from __future__ import annotations

from collections.abc import Sequence

from .i18n import tr


def unmapped_bands(model_bands: Sequence[str], mapping: Sequence[int | None],
                   filled: Sequence[str] = ()) -> list[str]:
    """Model bands without a layer band that the backend will not fill spectrally either."""
    return [band for band, index in zip(model_bands, mapping) if index is None and band not in filled]


def input_blocker(has_optical: bool, optical_missing: Sequence[str], radar_missing: Sequence[str] = ()
                  ) -> str | None:
    """Why Embed, Cluster and Similarity cannot run (``None``: they can)."""
    if not has_optical:
        return tr("choose an optical layer")
    if optical_missing:
        return tr("Map a layer band to: {bands}").format(bands=", ".join(optical_missing))
    if radar_missing:
        return tr("Map a radar layer band to: {bands}").format(bands=", ".join(radar_missing))
    return None


def samples_blocker(has_samples: bool, class_field: str | None) -> str | None:
    """Why Classify and Segment cannot run once the inputs are fine (``None``: they can)."""
    if not has_samples:
        return tr("choose a sample polygon layer (or create one with New…)")
    if not class_field:
        return tr("pick a class field (the attribute holding each polygon's class)")
    return None
