"""Where the dock writes results and hand-made sample layers: never a silent temporary folder.

* a folder the analyst chose (kept in QgsSettings), else
* ``terraprobe/`` beside the saved project, else
* while the project is unsaved, a visible folder in the home directory (``~/Terraprobe/unsaved project``)
  that the dock names; once the project is saved, the dock offers to move what it holds beside it
  (:func:`move_beside_project`), updating the layers' sources.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from qgis.core import QgsDataProvider, QgsMapLayer, QgsProject, QgsSettings, QgsVectorLayer

#: The QgsSettings key of the folder the analyst chose (empty: beside the project).
CHOSEN_KEY = "terraprobe/results_folder"
#: Results of an unsaved project: a folder people see and back up, not the system's temp folder.
UNSAVED_PARTS = ("Terraprobe", "unsaved project")
#: The folder beside a saved project.
PROJECT_SUBFOLDER = "terraprobe"


@dataclass(frozen=True)
class ResultsFolder:
    """A results folder and why it is the one: ``chosen``, ``project`` or ``unsaved``."""

    path: Path
    why: str


def unsaved_folder() -> Path:
    return Path.home().joinpath(*UNSAVED_PARTS)


def chosen_folder() -> str:
    return str(QgsSettings().value(CHOSEN_KEY, "") or "").strip()


def set_chosen_folder(path: str) -> None:
    """Remember the analyst's folder (``""``: back to beside the project)."""
    QgsSettings().setValue(CHOSEN_KEY, str(path).strip())


def results_folder(project: QgsProject | None = None) -> ResultsFolder:
    """The folder for the next result (created)."""
    project = project or QgsProject.instance()
    chosen = chosen_folder()
    if chosen:
        found = ResultsFolder(Path(chosen).expanduser(), "chosen")
    elif project.homePath():
        found = ResultsFolder(Path(project.homePath()) / PROJECT_SUBFOLDER, "project")
    else:
        found = ResultsFolder(unsaved_folder(), "unsaved")
    found.path.mkdir(parents=True, exist_ok=True)
    return found


def layer_file(layer: QgsMapLayer) -> Path | None:
    """The file behind a file-based layer (``None`` for others)."""
    path = Path(layer.source().split("|")[0])
    return path if path.is_file() else None


def layers_in(folder: Path, project: QgsProject | None = None) -> list[QgsMapLayer]:
    """The project's layers whose file lies in ``folder``."""
    project = project or QgsProject.instance()
    found = []
    for layer in project.mapLayers().values():
        path = layer_file(layer)
        if path is not None and path.parent.resolve() == folder.resolve():
            found.append(layer)
    return found


def move_beside_project(project: QgsProject | None = None) -> tuple[list[str], list[str]]:
    """Move the files of this project's layers from the unsaved-project folder to ``terraprobe/`` beside the
    saved project (with their styles and companions, e.g. ``_pca.tif``, ``.qml``) and point the layers at
    the moved files. Layers being edited stay (their edits are not saved yet).

    Returns ``(moved layer names, layer names left because they are being edited)``.
    """
    project = project or QgsProject.instance()
    if not project.homePath():
        return [], []
    source_folder = unsaved_folder()
    target = Path(project.homePath()) / PROJECT_SUBFOLDER
    target.mkdir(parents=True, exist_ok=True)
    moved, left, files = [], [], []
    for layer in layers_in(source_folder, project):
        if isinstance(layer, QgsVectorLayer) and layer.isEditable():
            left.append(layer.name())
        else:
            files.append((layer, layer_file(layer)))
    _move_companions([path for _, path in files], source_folder, target)
    for layer, path in files:
        layer.setDataSource(layer.source().replace(str(path), str(target / path.name)), layer.name(),
                            layer.providerType(), QgsDataProvider.ProviderOptions())
        moved.append(layer.name())
    _move_companions([path for _, path in files], source_folder, target)  # sidecars QGIS wrote on closing
    return moved, left


def _move_companions(paths: list[Path], source_folder: Path, target: Path) -> None:
    """Move every file of ``source_folder`` named after one of ``paths`` (``x.tif``, ``x_pca.tif``,
    ``x.qml``, ``x.tif.aux.xml``...) to ``target``, replacing what is there."""
    for path in paths:
        for companion in sorted(source_folder.glob(path.stem + "*")):
            if companion.exists():  # an earlier layer's stem may have taken it along
                shutil.move(str(companion), str(target / companion.name))
