"""Find the Python interpreter that runs the backend, or say in the analyst's words why there is none.

Plain Python (no qgis, no torch). The remote client needs no torch: any Python 3 runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .contract import paths as contract_paths

#: The plugin root: the folder holding metadata.txt, plugin/ and backend/.
PLUGIN_ROOT = Path(__file__).resolve().parents[1]
#: Packages whose absence means "not the backend's environment" (checked without importing them).
BACKEND_PACKAGES = ("torch", "numpy", "rasterio", "sklearn")
_PROBE = ("import importlib.util, json, sys; print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
          "'missing': [m for m in " + repr(BACKEND_PACKAGES) + " if importlib.util.find_spec(m) is None]}))")

_torch_check_cache: dict[str, bool] = {}


class BackendNotFound(RuntimeError):
    """No Python interpreter with the backend's dependencies was found."""


def hidden_window() -> dict[str, Any]:
    """``subprocess`` arguments that keep a console window from flashing up on Windows."""
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}


def run_quietly(argv: list[str], timeout: float, **options: Any) -> subprocess.CompletedProcess | None:
    """``argv`` run, its output captured as text, no console window; ``None`` unless it exits 0 in time."""
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                                   **options, **hidden_window())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed if completed.returncode == 0 else None


def venv_python(root: Path = PLUGIN_ROOT) -> Path:
    """The interpreter of the ``.venv`` inside the plugin folder (may not exist)."""
    if sys.platform == "win32":
        return root / ".venv" / "Scripts" / "python.exe"
    return root / ".venv" / "bin" / "python"


def host_python() -> str | None:
    """The Python interpreter QGIS itself runs on (``sys.executable`` is QGIS inside the app)."""
    name = Path(sys.executable).name.lower()
    if name.startswith("python"):
        return sys.executable
    prefix = Path(sys.exec_prefix)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = ([prefix / "python.exe", prefix / "python3.exe"] if sys.platform == "win32"
                  else [prefix / "bin" / f"python{version}", prefix / "bin" / "python3"])
    return next((str(c) for c in candidates if c.is_file()), None)


def python_has_torch(python: str, timeout: float = 60.0) -> bool:
    """Whether ``import torch`` works in ``python`` (checked in a subprocess, cached)."""
    if python not in _torch_check_cache:
        _torch_check_cache[python] = run_quietly([python, "-c", "import torch"], timeout) is not None
    return _torch_check_cache[python]


def user_env_dirs() -> list[Path]:
    """Per-user backend environments, outside the plugin folder so upgrades keep them.

    Inside QGIS: the profile's ``terraprobe/venv`` (``$TERRAPROBE_HOME/venv`` when set), the other
    QGIS profiles' (``qgis_process`` runs in the default profile); then the platform's data folder
    (``~/.local/share/terraprobe/venv``, ``%APPDATA%\\terraprobe\\venv``,
    ``~/Library/Application Support/terraprobe/venv``).
    """
    dirs: list[Path] = []
    try:
        from .settings import profile_homes

        dirs += [contract_paths.backend_env_dir(home) for home in profile_homes()]
    except ImportError:  # no QGIS: a plain process or a test
        pass
    default = contract_paths.backend_env_dir()
    if default not in dirs:
        dirs.append(default)
    return dirs


def interpreter_problem(python: str, timeout: float = 30.0) -> str | None:
    """Why ``python`` cannot run the backend, in the analyst's words (``None``: it looks fine).

    Tells "not a Python interpreter" from "a Python without torch / rasterio …"; the packages are
    looked up, not imported, so the check takes a Python start-up.
    """
    advice = ("Clear Settings › Backend Python to use the environment \"Set up backend…\" made, or "
              "choose that environment's interpreter.")
    completed = run_quietly([python, "-c", _PROBE], timeout,
                            cwd=str(Path(python).parent) if Path(python).parent.is_dir() else None)
    try:
        facts = json.loads(completed.stdout.strip().splitlines()[-1]) if completed else None
    except (ValueError, IndexError):
        facts = None
    if not isinstance(facts, dict):
        return f"{python} is not a Python interpreter. {advice}"
    if facts.get("missing"):
        return (f"{python} is Python {facts.get('version', '?')} without {', '.join(facts['missing'])}: "
                f"not the backend's environment. {advice}")
    return None


def setup_instructions(root: Path = PLUGIN_ROOT) -> str:
    """What the analyst should do to get a backend interpreter on this platform."""
    venv = venv_python(root)
    in_qgis = ("In QGIS: Terraprobe dock > Settings > \"Set up backend…\" installs it for you into "
               f"{user_env_dirs()[0]} (a few minutes; kept across plugin upgrades).\nOr by hand: ")
    if sys.platform.startswith("linux"):
        return in_qgis + (f"in a terminal, in the plugin folder {root}, run:\n"
                          f"    bash scripts/setup.sh\n"
                          f"(or, without root rights: python3 -m venv .venv && "
                          f".venv/bin/python -m pip install -r requirements.txt)\n"
                          f"then set the backend interpreter to {venv} in the Terraprobe settings.")
    activate = r".venv\Scripts\activate" if sys.platform == "win32" else "source .venv/bin/activate"
    return in_qgis + (f"create a Python 3.11 environment for the backend (not QGIS's own Python), "
                      f"for example in a terminal in the plugin folder {root}:\n"
                      f"    python3.11 -m venv .venv\n    {activate}\n"
                      f"    python -m pip install -r requirements.txt\n"
                      f"or with conda: conda create -n terraprobe python=3.11 && conda activate terraprobe "
                      f"&& pip install -r requirements.txt\n"
                      f"then set the backend interpreter (e.g. {venv}) in the Terraprobe settings.")


def find_backend_python(configured: str | None = None, root: Path = PLUGIN_ROOT,
                        allow_host: bool = True, env_dirs: list[Path] | None = None) -> str:
    """Find the interpreter that runs the backend.

    Order: the configured path (setting ``terraprobe/backend_python``), the per-user backend
    environment (``env_dirs``, default :func:`user_env_dirs`; made by "Set up backend…"), the
    plugin folder's ``.venv`` (``scripts/setup.sh``), then QGIS's own interpreter if torch happens
    to import there.

    Raises:
        BackendNotFound: with instructions for the analyst when none fits.
    """
    if configured:
        if Path(configured).is_file():
            return str(configured)
        raise BackendNotFound(f"The configured backend interpreter does not exist: {configured}\n"
                              + setup_instructions(root))
    for env_dir in user_env_dirs() if env_dirs is None else env_dirs:
        python = contract_paths.env_python(env_dir)
        if python.is_file():
            return str(python)
    venv = venv_python(root)
    if venv.is_file():
        return str(venv)
    host = host_python() if allow_host else None
    if host and python_has_torch(host):
        return host
    raise BackendNotFound("No Python interpreter with the Terraprobe backend's packages (PyTorch) "
                          "was found.\n" + setup_instructions(root))


def configured_backend_python() -> str | None:
    """The interpreter set in QGIS settings, if running inside QGIS and one is set."""
    try:
        from .settings import Settings
    except ImportError:
        return None
    return Settings().backend_python or None


def remote_client_python(root: Path = PLUGIN_ROOT) -> str:
    """An interpreter for the remote client: the backend's when there is one, else QGIS's own."""
    try:
        return find_backend_python(configured_backend_python(), root=root, allow_host=False)
    except BackendNotFound:
        pass
    host = host_python()
    if host:
        return host
    raise BackendNotFound("No Python 3 interpreter was found to run the remote backend client; set "
                          "Backend Python to any Python 3.9+ in the Terraprobe settings.")
