"""Install the backend's Python environment from inside QGIS: plan, run, check, report.

Plain Python (no qgis, no torch), so the same code runs in the setup dialog's ``QgsTask``, in
tests and from a terminal. The environment is a virtual environment made by the platform's
``venv`` + pip (or by ``uv`` when it is on PATH and chosen) in a per-user folder that plugin
upgrades never touch (see :mod:`backend.contract.paths`); it gets the backend's pinned
requirements (``requirements.txt``, the same pins ``scripts/setup.sh`` uses), with the torch build
chosen for the machine: CUDA when an NVIDIA driver answers (``nvidia-smi``), else CPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .contract import paths as contract_paths
from .contract import protocol
from .interpreter import PLUGIN_ROOT, hidden_window, host_python, run_quietly

#: Where the CPU and CUDA builds of torch come from when not configured (PyTorch's own indexes).
#: Linux CUDA builds are PyPI's default torch wheels; macOS has one build on PyPI.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
#: A torch index setting meaning "no extra index: use pip's own configuration".
NO_INDEX = ("none", "pypi", "default")
INSTALLERS = ("auto", "pip", "uv")
TORCH_BUILDS = ("auto", "cpu", "cuda")

LineCallback = Callable[[str], None]
CancelCheck = Callable[[], bool]


class InstallError(RuntimeError):
    """A step of the installation failed; ``log`` holds its last output lines."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log = log


class InstallCancelled(InstallError):
    """The user cancelled; the environment may be incomplete and a retry continues it."""


@dataclass
class InstallOptions:
    """What to install where, and from which package sources.

    Attributes:
        env_dir: the environment folder (created; per-user, outside the plugin folder).
        requirements: the pinned requirements file (the plugin's ``requirements.txt``).
        base_python: interpreter that creates the environment (default: QGIS's own Python).
        installer: ``auto`` (uv when on PATH, else pip), ``pip`` or ``uv``.
        torch_build: ``auto`` (CUDA when ``nvidia-smi`` answers), ``cpu`` or ``cuda``.
        torch_index_url: index for torch ("" = PyTorch's index for the build; ``none`` = pip's own
            configuration, e.g. a local mirror).
        index_url, extra_index_urls, find_links: package sources for every step (mirrors,
            air-gapped sites); pip's own configuration (pip.conf, ``PIP_*``) applies as well.
        system_site_packages: let the environment see the base interpreter's packages.
        recreate: delete an existing environment first.
    """

    env_dir: Path
    requirements: Path = PLUGIN_ROOT / "requirements.txt"
    base_python: str | None = None
    installer: str = "auto"
    torch_build: str = "auto"
    torch_index_url: str = ""
    index_url: str = ""
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    system_site_packages: bool = False
    recreate: bool = False


@dataclass
class Step:
    """One command of the plan."""

    description: str
    argv: list[str]
    cwd: Path | None = None


@dataclass
class InstallResult:
    """A finished installation: the interpreter and the backend's ``version`` facts."""

    python: Path
    versions: dict
    torch_build: str
    installer: str
    log: list[str] = field(default_factory=list)


# -- choices --------------------------------------------------------------------------------------
def has_nvidia_gpu(timeout: float = 20.0) -> bool:
    """Whether an NVIDIA driver answers ``nvidia-smi -L`` with at least one GPU."""
    smi = shutil.which("nvidia-smi")
    completed = run_quietly([smi, "-L"], timeout) if smi else None
    return completed is not None and "GPU" in completed.stdout


def choose_torch_build(option: str = "auto") -> str:
    """``cpu`` or ``cuda``: the option, or for ``auto`` CUDA when an NVIDIA GPU is present."""
    if option in ("cpu", "cuda"):
        return option
    return "cuda" if has_nvidia_gpu() else "cpu"


def torch_index(build: str, configured: str = "", platform: str | None = None) -> str | None:
    """The index torch is installed from (``None``: pip's default sources and configuration)."""
    configured = configured.strip()
    if configured.lower() in NO_INDEX:
        return None
    if configured:
        return configured
    platform = platform or sys.platform
    if platform == "darwin":
        return None
    if build == "cpu":
        return TORCH_CPU_INDEX
    return TORCH_CUDA_INDEX if platform == "win32" else None


def choose_installer(option: str = "auto") -> str:
    """``pip`` or ``uv`` (``auto``: uv when it is on PATH)."""
    if option == "uv" and not shutil.which("uv"):
        raise InstallError("uv was chosen as the installer but is not on PATH; choose pip or auto")
    if option in ("pip", "uv"):
        return option
    return "uv" if shutil.which("uv") else "pip"


def torch_requirement(requirements: Path) -> str:
    """The pinned torch line of the requirements file (``torch==X``), or plain ``torch``."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text.lower().startswith("torch") and (len(text) == 5 or not text[5].isalnum()):
            return text
    return "torch"


def pip_has_own_sources(python: str, timeout: float = 30.0) -> bool:
    """Whether pip is configured with its own package sources (``PIP_*`` or pip.conf find-links/index).

    A site that set up pip (a mirror, a local wheel folder) gets torch from there too, instead of
    from PyTorch's public index.
    """
    names = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
    if any(os.environ.get(name, "").strip() for name in names):
        return True
    completed = run_quietly([python, "-m", "pip", "config", "list"], timeout)
    return completed is not None and any(key in completed.stdout for key in ("find-links", "index-url"))


def base_interpreter(configured: str | None = None) -> str:
    """The interpreter that creates the environment: the setting, QGIS's Python, or this one."""
    for candidate in (configured, host_python(), sys.executable):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise InstallError("no Python interpreter found to create the backend environment; set one in "
                       "the setup dialog (Python 3.9 or newer with the venv module)")


# -- the plan -------------------------------------------------------------------------------------
def _source_args(options: InstallOptions, installer: str) -> list[str]:
    args: list[str] = []
    if options.index_url:
        args += ["--index-url", options.index_url]
    for url in options.extra_index_urls:
        args += ["--extra-index-url", url]
    links = list(options.find_links)
    if installer == "uv":  # uv does not read pip's configuration: carry the environment's find-links
        links += [p for p in os.environ.get("PIP_FIND_LINKS", "").split() if p not in links]
    for link in links:
        args += ["--find-links", link]
    return args


def plan(options: InstallOptions, build: str, installer: str, own_sources: bool = False) -> list[Step]:
    """The commands that create and fill the environment (nothing is run).

    ``own_sources``: pip has its own configured sources (:func:`pip_has_own_sources`); without a
    torch index setting, torch then comes from them rather than from PyTorch's index.
    """
    env = Path(options.env_dir)
    python = str(contract_paths.env_python(env))
    base = base_interpreter(options.base_python)
    sources = _source_args(options, installer)
    site = ["--system-site-packages"] if options.system_site_packages else []
    torch_line = torch_requirement(options.requirements)
    index = None if own_sources and not options.torch_index_url.strip() else \
        torch_index(build, options.torch_index_url)
    torch_sources = ["--index-url", index] if index else []
    if installer == "uv":
        uv = shutil.which("uv") or "uv"
        create = Step("creating the environment (uv)", [uv, "venv", "--python", base, *site, str(env)])
        install = [uv, "pip", "install", "--python", python]
        torch_step = [*install, torch_line, *torch_sources, *sources]
    else:
        create = Step("creating the environment (venv)", [base, "-m", "venv", *site, str(env)])
        install = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        torch_step = [*install, torch_line, *torch_sources, *sources]
    if contract_paths.env_python(env).is_file():  # a retry or a reinstall: kept, and the step count too
        create = Step("checking the existing environment", [python, "-c", "import sys; print(sys.version)"])
    steps = [create]
    steps.append(Step(f"installing PyTorch ({build.upper()} build{', from ' + index if index else ''})",
                      torch_step))
    steps.append(Step("installing the backend requirements",
                      [*install, "-r", str(options.requirements), *sources]))
    backend = [python, "-m", "backend"]
    steps.append(Step("checking the backend: versions", [*backend, "version", "--events", "json"],
                      cwd=PLUGIN_ROOT))
    steps.append(Step("checking the backend: a short training run",
                      [*backend, "selftest", "--steps", "2", "--events", "json"], cwd=PLUGIN_ROOT))
    return steps


def _safe_to_delete(env: Path) -> bool:
    """Only an empty folder or a virtual environment (``pyvenv.cfg``) is ever deleted."""
    return env.is_dir() and ((env / "pyvenv.cfg").is_file() or not any(env.iterdir()))


def prepare_folder(options: InstallOptions) -> None:
    """Create the parent folder; remove a broken or (with ``recreate``) an existing environment."""
    env = Path(options.env_dir)
    env.parent.mkdir(parents=True, exist_ok=True)
    broken = env.exists() and not contract_paths.env_python(env).is_file()
    if (options.recreate or broken) and env.exists():
        if not _safe_to_delete(env):
            raise InstallError(f"{env} exists and is not a Python environment; choose another folder")
        shutil.rmtree(env)


def run_step(step: Step, on_line: LineCallback, is_canceled: CancelCheck | None = None) -> list[str]:
    """Run one command, streaming its output lines; returns them.

    Raises:
        InstallCancelled: ``is_canceled`` turned true (the process is stopped).
        InstallError: the command could not start or failed.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    env.pop("PYTHONHOME", None)  # QGIS on Windows/macOS sets these for its own Python
    env.pop("PYTHONPATH", None)
    try:
        process = subprocess.Popen(step.argv, cwd=str(step.cwd) if step.cwd else None, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
                                   bufsize=1, **hidden_window())
    except OSError as exc:
        raise InstallError(f"{step.description}: could not start {step.argv[0]}: {exc}") from exc
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip())
            on_line(line.rstrip())
        done.set()

    reader = threading.Thread(target=read, daemon=True, name="install-output")
    reader.start()
    while not done.wait(0.2):
        if is_canceled and is_canceled():
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise InstallCancelled(f"cancelled while {step.description}", "\n".join(lines[-40:]))
    code = process.wait()
    if code != 0:
        tail = "\n".join(lines[-40:])
        raise InstallError(f"{step.description} failed (exit code {code}): "
                           f"{_last_error_line(lines) or 'see the log'}", tail)
    return lines


def _last_error_line(lines: Sequence[str]) -> str:
    for line in reversed(lines):
        event, text = protocol.decode_event(line), line.strip().lower()
        if event["event"] == protocol.ERROR:
            return str(event.get("message", ""))
        if not text.startswith("{") and (text.startswith(("error", "fatal")) or "error:" in text):
            return line.strip()[:300]
    return ""


def _result_stats(lines: Sequence[str]) -> dict:
    for line in reversed(lines):
        event = protocol.decode_event(line)
        if event["event"] == protocol.RESULT:
            return dict(event.get("stats") or {})
    return {}


def install(options: InstallOptions, on_line: LineCallback | None = None,
            on_step: Callable[[int, int, str], None] | None = None,
            is_canceled: CancelCheck | None = None) -> InstallResult:
    """Create (or complete) the environment, install the pinned requirements, check the backend.

    Safe to run again (the retry): an existing environment is completed, not rebuilt, unless
    ``options.recreate``.

    Args:
        options: what and where.
        on_line: every output line of every command (for the log view).
        on_step: ``(index, count, description)`` when a step starts.
        is_canceled: polled while commands run.

    Raises:
        InstallError / InstallCancelled: with the failing step and its last output lines.
    """
    on_line = on_line or (lambda _line: None)
    build = choose_torch_build(options.torch_build)
    installer = choose_installer(options.installer)
    prepare_folder(options)
    own = installer == "pip" and pip_has_own_sources(base_interpreter(options.base_python))
    steps = plan(options, build, installer, own_sources=own)
    log: list[str] = []
    versions: dict = {}
    for index, step in enumerate(steps):
        if on_step:
            on_step(index, len(steps), step.description)
        on_line(f"$ {' '.join(step.argv)}")
        lines = run_step(step, lambda line: (log.append(line), on_line(line)), is_canceled)
        if step.argv[-3:] == ["version", "--events", "json"]:
            versions = _result_stats(lines)
    if on_step:
        on_step(len(steps), len(steps), "done")
    return InstallResult(python=contract_paths.env_python(options.env_dir), versions=versions,
                         torch_build=build, installer=installer, log=log)


# -- the report -----------------------------------------------------------------------------------
def diagnostics_report(stats: dict, python: str | os.PathLike[str] = "", env_dir: str | os.PathLike[str] = "",
                       models_dir: str | os.PathLike[str] = "") -> str:
    """The ``version`` facts as a plain-text report a user can copy into an issue."""
    devices = stats.get("cuda_devices") or []
    memory = stats.get("cuda_memory_gb") or []
    gpus = [f"{name} ({memory[i]:.1f} GB)" if i < len(memory) else str(name)
            for i, name in enumerate(devices)]
    lines = [
        f"Terraprobe backend {stats.get('backend', '?')}",
        f"Python {stats.get('python', '?')}: {stats.get('executable') or python or '?'}",
        f"PyTorch {stats.get('torch', '?')} (CUDA build {stats.get('torch_cuda') or 'none'})",
        f"CUDA available: {'yes' if stats.get('cuda_available') else 'no'}",
        f"GPU: {', '.join(gpus) if gpus else 'none'}",
        f"Device: {stats.get('default_device', '?')} (default)",
        f"NumPy {stats.get('numpy', '?')} · rasterio {stats.get('rasterio', '?')} · "
        f"GDAL {stats.get('gdal', '?')}",
        f"Platform: {stats.get('platform') or sys.platform}",
    ]
    if env_dir:
        lines.append(f"Backend environment: {env_dir}")
    if models_dir:
        lines.append(f"Models folder: {models_dir}")
    return "\n".join(lines)
