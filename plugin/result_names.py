"""Result layer names that say what made them: action, classifier or method with k, model, date (pure).

``"S2 Spain classes — random forest, galileo-nano, 2020-05-12"``: runs with other choices sit side by side
in the layer tree and can be told apart without opening their properties.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .contract import requests as _requests
from .i18n import tr
from .jobs import STAMP_PATTERN

#: Classifiers as layer names show them (lower case: they follow the layer title).
CLASSIFIER_NAMES = {"auto": "auto", "knn": "kNN", "random-forest": "random forest",
                    "gradient-boosting": "gradient boosting"}
assert tuple(CLASSIFIER_NAMES) == _requests.CLASSIFIERS
#: A date in a file or layer name: 2020-05-12, 20200512, 2020_05 (years 1972-2099).
DATE_PATTERN = re.compile(r"(?<!\d)(19[7-9]\d|20\d\d)[-_.]?(0[1-9]|1[0-2])"
                          r"(?:[-_.]?(0[1-9]|[12]\d|3[01]))?(?!\d)")
SEPARATOR = " — "
#: Change's per-date inputs, as request fields ``before_<kind>`` / ``after_<kind>``.
CHANGE_SOURCES = ("embeddings", "optical", "sar")


def method_detail(request) -> str:
    """Cluster's method and k, or classify's classifier (kNN with its k) and band statistics."""
    defaults = _requests.DEFAULTS
    if request.action == "cluster":
        if (request.method or defaults["method"]) == "hdbscan":
            return "HDBSCAN"
        return f"k-means k={request.k}" if request.k else "k-means"
    if request.action == "classify":
        classifier = request.classifier or defaults["classifier"]
        text = CLASSIFIER_NAMES.get(classifier, classifier)
        if classifier == "knn":
            text += f" k={request.neighbors or defaults['neighbors']}"
        return text + (" + " + tr("band statistics") if request.band_stats else "")
    if request.action == "segment" and not request.head:
        return tr("{steps} steps").format(steps=request.steps or defaults["steps"])
    return ""


def model_detail(request, stats: dict) -> str:
    """The encoder's name (its file's stem); ``""`` when a given embedding field replaced the encoder."""
    given_field = request.embeddings or request.before_embeddings
    if stats.get("embeddings_given") or (given_field and not request.optical and not request.sar):
        return ""
    model = stats.get("model") or request.model
    return Path(str(model)).stem if model else ""


def date_detail(texts: Iterable[str], already: str = "") -> str:
    """The first date found in ``texts`` (file names, band metadata) as ``YYYY-MM-DD`` or ``YYYY-MM``;
    ``""`` when none is found or ``already`` (the layer's own name) shows it."""
    if DATE_PATTERN.search(already):
        return ""
    for text in texts:
        found = DATE_PATTERN.search(STAMP_PATTERN.sub("", Path(str(text)).name))
        if found:
            year, month, day = found.groups()
            return f"{year}-{month}-{day}" if day else f"{year}-{month}"
    return ""


def run_details(request, stats: dict, source_texts: Iterable[str] = (), source_name: str = "") -> list[str]:
    """What made a result, in the order a layer name shows it (empty parts left out)."""
    if request.action == "change":
        files = {date: [getattr(request, f"{date}_{kind}") or "" for kind in CHANGE_SOURCES]
                 for date in ("before", "after")}
        dates = [date_detail(files[date], source_name) for date in ("before", "after")]
        date = " → ".join(dates) if all(dates) else ""
    else:
        date = date_detail(source_texts, source_name)
    parts = [method_detail(request), model_detail(request, stats), date]
    return [part for part in parts if part]


def layer_name(source_name: str, title: str, point: str = "", details: Iterable[str] = ()) -> str:
    """``"<source> <title> [<point>] — <detail>, <detail>"``; a source that is itself a named result
    (``"S2 embeddings — croma-base"``) passes its details on after the run's."""
    base, _, inherited = source_name.partition(SEPARATOR)
    name = f"{base} {title}" + (f" {point}" if point else "")
    details = [d for d in details if d]
    details += [d for d in inherited.split(", ") if d and d not in details]
    return name + (SEPARATOR + ", ".join(details) if details else "")


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``... when a layer of the project already has it."""
    if name not in taken:
        return name
    number = 2
    while f"{name} ({number})" in taken:
        number += 1
    return f"{name} ({number})"
