"""Model config facts without torch: the joint-encoder flag (and old files' provenance), the hash memo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.inference import model as model_module
from backend.inference.embed import embedding_keys
from backend.models.config import ModelConfig

REPO = Path(__file__).resolve().parents[2]
OLD_NOTE = "untrained (dual-encoder objective): embed one modality at a time"


def test_joint_encoder_flag_decides_the_embedding_and_old_files_keep_working() -> None:
    names = ["sar", "optical"]
    assert ModelConfig().joint_encoder_trained
    assert embedding_keys(names, ModelConfig()) == ["joint_encodings"]
    untrained = ModelConfig(joint_encoder_trained=False)
    assert embedding_keys(names, untrained) == ["sar_encodings", "optical_encodings"]
    assert embedding_keys(["optical"], untrained) == ["optical_encodings"]
    written = untrained.to_dict()
    assert written["joint_encoder_trained"] is False
    assert not ModelConfig.from_dict(written).joint_encoder_trained
    # a file from before the field: only its provenance note said so
    old = ModelConfig(provenance={"joint_encoder": OLD_NOTE}).to_dict()
    del old["joint_encoder_trained"]
    assert not ModelConfig.from_dict(old).joint_encoder_trained
    del old["provenance"]
    assert ModelConfig.from_dict(old).joint_encoder_trained
    # the field wins over a stale note (behaviour no longer depends on the free text)
    assert ModelConfig.from_dict({**old, "provenance": {"joint_encoder": OLD_NOTE},
                                  "joint_encoder_trained": True}).joint_encoder_trained


def test_model_config_hash_and_cache_key_need_no_torch(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from backend.inference.model import model_config, model_hash, resolve_model_path\n"
        "from backend.inference.cache import EmbeddingCache, key_facts\n"
        "from backend.inference.embed import check_tiling\n"
        "from backend.inference.resolve import open_inputs\n"
        "import backend.models\n"
        "path = resolve_model_path(None, 'sentinel2')\n"
        "config = model_config(path)\n"
        "assert config.modalities and len(model_hash(path)) == 64\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "TERRAPROBE_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_large_model_hash_is_remembered_on_disk_and_redone_when_the_file_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERRAPROBE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(model_module, "HASH_MEMO_MIN_BYTES", 1 << 20)
    monkeypatch.setattr(model_module, "_HASHES", {})
    weights = tmp_path / "big.pt"
    weights.write_bytes(os.urandom(3 << 20))
    first = model_module.model_hash(weights)
    memo = tmp_path / "cache" / model_module.HASH_MEMO_NAME
    remembered = json.loads(memo.read_text())["files"]
    assert list(remembered) == [str(weights.resolve())]

    hashed: list[Path] = []
    real_sha256 = model_module._sha256
    monkeypatch.setattr(model_module, "_sha256", lambda path: hashed.append(path) or real_sha256(path))
    monkeypatch.setattr(model_module, "_HASHES", {})  # a new process
    assert model_module.model_hash(weights) == first and hashed == []
    with weights.open("r+b") as handle:  # same size, content changed
        handle.seek(5)
        handle.write(b"changed")
    monkeypatch.setattr(model_module, "_HASHES", {})
    assert model_module.model_hash(weights) != first and hashed == [weights]


@pytest.mark.parametrize("objective", ["dual", "xstars"])
def test_pretraining_that_leaves_the_joint_encoder_untrained_says_so(objective: str) -> None:
    from backend.models.config import ModalityConfig
    from backend.training.objectives import build_objective

    config = ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1, modalities={
        "sar": ModalityConfig(["VV", "VH"], [-12.0, -19.0], [4.0, 5.0]),
        "optical": ModalityConfig(["B02", "B03", "B04"], [1000.0] * 3, [500.0] * 3)})
    options = {"msad_dim": "16", "dino_dim": "16", "dino_hidden": "16", "dino_bottleneck": "8"}
    settings = {"crop": 32, "init": None, "options": options if objective == "xstars" else {}}
    exported = build_objective(objective, config, settings).export_encoder().config
    assert exported.joint_encoder_trained is False
    assert embedding_keys(["sar", "optical"], exported) == ["sar_encodings", "optical_encodings"]
    assert not ModelConfig.from_dict(exported.to_dict()).joint_encoder_trained
    fresh = ModelConfig.from_dict({**config.to_dict(), "joint_encoder_trained": True})
    croma = build_objective("croma", fresh, {"crop": 32, "init": None, "options": {}})
    assert croma.export_encoder().config.joint_encoder_trained
