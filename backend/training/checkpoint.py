"""Training checkpoints: the encoder in the backend's model format plus a resumable state file.

A run folder holds, after every save:

* ``model.safetensors`` + ``model.json``: the latest encoder (``embed`` and the plugin use it);
* ``state.pt``: everything a bit-for-bit ``--resume`` needs: the objective's full state (encoders
  and heads), optimiser, schedule position, RNG states of torch/numpy/python, the data-order
  position and the run's settings. Only tensors and plain containers are stored, so it loads with
  ``torch.load(weights_only=True)``.

All files are first written into a hidden temporary folder beside them and moved into place
only when every one is complete: a failed save (disk full, cancellation) leaves the previous
checkpoint untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.errors import UserError

STATE_FILE = "state.pt"
MODEL_STEM = "model"
STATE_FORMAT = 1


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


def save_checkpoint(run_dir: str | os.PathLike[str], encoder: torch.nn.Module, state: dict[str, Any]) -> None:
    """Write encoder + state into ``run_dir`` atomically (all files or none replaced).

    Raises:
        UserError: the disk is full or not writable; the previous checkpoint is left intact.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    names = [f"{MODEL_STEM}.safetensors", f"{MODEL_STEM}.json", STATE_FILE]
    try:
        _write_encoder(encoder, tmp / MODEL_STEM)
        _write_state({**state, "format": STATE_FORMAT}, tmp / STATE_FILE)
        # The state file goes last: a state file always describes weights already in place.
        for name in names:
            os.replace(tmp / name, run_dir / name)
    except OSError as exc:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise UserError(f"could not save the checkpoint at step {state.get('step')} in {run_dir}: {reason}; "
                        f"the previous checkpoint there is intact", kind="disk_full"
                        if exc.errno == errno.ENOSPC else "io_error") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)


def remove_stale_temporaries(run_dir: str | os.PathLike[str]) -> int:
    """Delete half-written checkpoint folders left by a killed process; return how many."""
    removed = 0
    for leftover in Path(run_dir).glob(".checkpoint-*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
            removed += 1
    return removed


def load_state(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The training state saved in ``run_dir`` (loaded with ``weights_only=True``)."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} not found (is {run_dir} a pretrain run folder?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"cannot read training state {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise UserError(f"{path} is not a training state of this version")
    return state
