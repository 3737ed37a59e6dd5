"""Training checkpoints: the encoder in the backend's model format plus a resumable state file.

A run folder holds, after every save:

* ``model.safetensors`` + ``model.json``: the latest encoder (``embed`` and the plugin use it);
* ``state.pt``: everything a bit-for-bit ``--resume`` needs: the objective's full state (encoders
  and heads), optimiser, schedule position, RNG states of torch/numpy/python, the data-order
  position and the run's settings. Only tensors and plain containers are stored, so it loads with
  ``torch.load(weights_only=True)``;
* ``checkpoint.json``: the step and the size and SHA-256 of each of those three files, written
  (atomically, by rename) after them;
* ``previous/``: the checkpoint before, with its own manifest (hard links, no copy).

All files are first written into a hidden temporary folder beside them and moved into place
only when every one is complete: a failed save (disk full, cancellation) leaves the previous
checkpoint untouched, and a full disk is reported as an environment error (exit 3). ``--resume``
verifies the checksums and falls back to ``previous/`` when the latest checkpoint is damaged.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.errors import EnvironmentFault, UserError, environment_fault
from backend.io.checksums import file_sha256

STATE_FILE = "state.pt"
MODEL_STEM = "model"
STATE_FORMAT = 1
#: The checksums of a checkpoint's files, written after them.
MANIFEST_FILE = "checkpoint.json"
MANIFEST_FORMAT = 1
#: The checkpoint before the latest (hard links to its files).
PREVIOUS_DIR = "previous"
CHECKPOINT_FILES = (f"{MODEL_STEM}.safetensors", f"{MODEL_STEM}.json", STATE_FILE)
#: A file system with less room than this (or 1 %) after a failed write counts as full.
_FULL_BYTES = 1 << 20


def capture_rng() -> dict[str, Any]:
    """RNG states of python, numpy and torch (CPU and CUDA) as plain values and tensors."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": numpy_state["bit_generator"],
                         "state": {"key": numpy_state["key"].numpy().astype(np.uint32),
                                   "pos": numpy_state["pos"]},
                         "has_gauss": numpy_state["has_gauss"], "gauss": numpy_state["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_state(state: dict[str, Any], path: Path) -> None:
    """Serialise the state dict (the single place that writes ``state.pt``)."""
    torch.save(state, path)


def _write_encoder(encoder: torch.nn.Module, stem: Path) -> None:
    from backend.models import save_model

    save_model(encoder, stem)


# -- checksums ----------------------------------------------------------------------------------
def _manifest(folder: Path, step: Any) -> dict[str, Any]:
    return {"format": MANIFEST_FORMAT, "step": step,
            "files": {name: {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
                      for name in CHECKPOINT_FILES}}


def verify_checkpoint(folder: Path) -> str | None:
    """Why the checkpoint in ``folder`` is unusable, or ``None`` when every checksum matches.

    A folder with a ``state.pt`` but no manifest (written before checksums existed) is accepted.
    """
    state = folder / STATE_FILE
    manifest_path = folder / MANIFEST_FILE
    if not state.is_file():
        return f"{STATE_FILE} is missing"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"its manifest {MANIFEST_FILE} is unreadable"
    for name, expected in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != expected.get("bytes"):
            return f"{name} is truncated or changed ({size} bytes, {expected.get('bytes')} recorded)"
        if file_sha256(path) != expected.get("sha256"):
            return f"{name} is corrupt (its SHA-256 differs from the one recorded)"
    return None


# -- saving ---------------------------------------------------------------------------------------
def _bytes_in(folder: Path | None, names: tuple[str, ...] | None = None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    files = [folder / n for n in names] if names else list(folder.iterdir())
    return sum(f.stat().st_size for f in files if f.is_file())


def _disk_full_reason(run_dir: Path, tmp: Path | None) -> str | None:
    """"the disk is full: N MB free, about M MB needed at RUN" when the file system has no room.

    Free space is counted as it will be once the half-written files in ``tmp`` are removed;
    the need is the size of the checkpoint in place (a checkpoint's size hardly changes).
    """
    try:
        usage = shutil.disk_usage(run_dir)
    except OSError:
        return None
    if usage.free > max(_FULL_BYTES, usage.total // 100):
        return None
    free = usage.free + _bytes_in(tmp)
    needed = _bytes_in(run_dir, CHECKPOINT_FILES) or _bytes_in(tmp)
    return f"the disk is full: {free / 2**20:.1f} MB free, about {needed / 2**20:.1f} MB needed at {run_dir}"


def _save_error(exc: BaseException, run_dir: Path, step: Any,
                tmp: Path | None = None) -> EnvironmentFault | None:
    """The one-line environment error for a failed write, or ``None`` when it is not one."""
    reason = _disk_full_reason(run_dir, tmp)
    if reason is None and isinstance(exc, OSError) and exc.errno is not None:
        fault = environment_fault(exc, run_dir)
        reason = str(fault) if fault is not None else None
    if reason is None:
        return None
    kind = "disk_full" if reason.startswith("the disk is full") else "io_error"
    return EnvironmentFault(f"could not save the checkpoint at step {step} in {run_dir}: {reason}; "
                            f"the previous checkpoint there is intact", kind=kind)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _keep_as_previous(run_dir: Path) -> None:
    """Make the current checkpoint (if sound) the ``previous/`` one: hard links, no copy."""
    current = [run_dir / name for name in (*CHECKPOINT_FILES, MANIFEST_FILE)]
    if not all(path.is_file() for path in current) or verify_checkpoint(run_dir) is not None:
        return
    staging = Path(tempfile.mkdtemp(prefix=".previous-", dir=run_dir))
    staging.chmod(run_dir.stat().st_mode & 0o777)
    for path in current:
        _link_or_copy(path, staging / path.name)
    previous = run_dir / PREVIOUS_DIR
    if previous.exists():
        stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=run_dir))
        os.replace(previous, stale / PREVIOUS_DIR)
        shutil.rmtree(stale, ignore_errors=True)
    os.replace(staging, previous)


def save_checkpoint(run_dir: str | os.PathLike[str], encoder: torch.nn.Module, state: dict[str, Any]) -> None:
    """Write encoder + state + manifest into ``run_dir``; the previous checkpoint moves to ``previous/``.

    Every file is first written into a hidden temporary folder and checksummed there; the sound
    current checkpoint becomes ``previous/`` (hard links), the new files are moved into place and
    the manifest last, so a manifest always describes the files beside it.

    Raises:
        EnvironmentFault: the disk is full or not writable; the previous checkpoint is left intact.
    """
    run_dir = Path(run_dir)
    step = state.get("step")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    except OSError as exc:
        raise _save_error(exc, run_dir, step) or exc from None
    try:
        try:
            _write_encoder(encoder, tmp / MODEL_STEM)
            _write_state({**state, "format": STATE_FORMAT}, tmp / STATE_FILE)
            (tmp / MANIFEST_FILE).write_text(json.dumps(_manifest(tmp, step), indent=2) + "\n",
                                             encoding="utf-8")
        except (OSError, RuntimeError) as exc:
            error = _save_error(exc, run_dir, step, tmp)
            if error is None:
                raise
            raise error from None
        try:
            _keep_as_previous(run_dir)
            # The state file goes after the weights and the manifest last: a manifest always
            # describes the files already in place.
            for name in (*CHECKPOINT_FILES, MANIFEST_FILE):
                os.replace(tmp / name, run_dir / name)
        except OSError as exc:
            raise _save_error(exc, run_dir, step) or exc from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)


def remove_stale_temporaries(run_dir: str | os.PathLike[str]) -> int:
    """Delete half-written checkpoint folders left by a killed process; return how many."""
    removed = 0
    for pattern in (".checkpoint-*", ".previous-*", ".stale-*"):
        for leftover in Path(run_dir).glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
                removed += 1
    return removed


# -- loading ------------------------------------------------------------------------------------
def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read training state {path}: {str(exc).splitlines()[0][:200]}",
                        kind="corrupt_checkpoint") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise UserError(f"{path} is not a training state of this version", kind="corrupt_checkpoint")
    return state


def load_state(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The training state saved in ``run_dir``, checked against its checksums.

    When the latest checkpoint is damaged, the previous one (``previous/``) is used instead and
    ``state["resumed_from"]`` says so (``{"path", "step", "reason"}``; the trainer logs it).

    Raises:
        UserError: nothing to resume, or every checkpoint there is damaged.
    """
    run_dir = Path(run_dir)
    candidates = [run_dir, run_dir / PREVIOUS_DIR]
    if not (run_dir / STATE_FILE).is_file() and not (run_dir / PREVIOUS_DIR / STATE_FILE).is_file():
        raise UserError(f"nothing to resume: {run_dir / STATE_FILE} not found "
                        f"(is {run_dir} a pretrain run folder?)")
    problems: list[str] = []
    for folder in candidates:
        if folder != run_dir and not folder.is_dir():
            break
        reason = verify_checkpoint(folder)
        if reason is None:
            try:
                state = _read_state(folder)
            except UserError as exc:
                reason = str(exc)
        if reason is not None:
            problems.append(f"{folder / STATE_FILE}: {reason}")
            continue
        if problems:
            state["resumed_from"] = {"path": str(folder), "step": state.get("step"), "reason": problems[0]}
        return state
    if len(problems) == 1:
        raise UserError(f"cannot resume {run_dir}: {problems[0]} and there is no previous checkpoint",
                        kind="corrupt_checkpoint")
    raise UserError(f"cannot resume {run_dir}: both checkpoints are damaged ({'; '.join(problems)})",
                    kind="corrupt_checkpoint")
