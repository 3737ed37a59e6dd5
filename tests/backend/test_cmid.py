"""CMID objective: trains through ``pretrain``; views, masks, token matching, queue and EMA teacher."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from backend.models import load_encoder, patchify
from backend.training.losses.contrastive import QueueInfoNCE
from backend.training.losses.distillation import ema_momentum
from backend.training.losses.views import ViewMaker, sample_geometry, token_centres
from backend.training.objectives.cmid import (
    CmidObjective,
    block_mask,
    encode_tokens,
    fill_masked,
    nearest_token_pairs,
)
from tests.backend.test_msad import first_and_last, real_batch, run_pretrain

TINY_OPTIONS = {"queue_size": "64", "proj_hidden": "64", "prototypes": "64", "local_hidden": "64",
                "local_bottleneck": "32"}


@pytest.mark.slow
def test_cmid_training_lowers_the_loss_and_exports_an_embeddable_model(tmp_path: Path) -> None:
    options = [arg for key, value in TINY_OPTIONS.items() for arg in ("-O", f"{key}={value}")]
    rows = run_pretrain(tmp_path / "run", "--objective", "cmid", *options, steps=24)
    first, last = first_and_last(rows)
    assert last < first, f"CMID loss did not fall: {first:.3f} -> {last:.3f}"
    assert {"reconstruction", "global", "local"} <= set(rows[0])
    model = load_encoder(tmp_path / "run" / "model")
    assert model.modalities == ("optical",)  # CMID trains one encoder and exports only that one
    chips, _ = real_batch()
    assert model(optical=chips["optical"][:2])["optical_encodings"].shape == (2, 64, 32)


def test_token_centres_follow_crops_and_flips() -> None:
    # A chip whose two channels hold each pixel centre's own (y, x): averaging a view's patch
    # must give back the centre that token_centres predicts, whatever the crop and flips.
    yy, xx = torch.meshgrid(torch.arange(96) + 0.5, torch.arange(96) + 0.5, indexing="ij")
    chip = torch.stack([yy, xx])[None].repeat(16, 1, 1, 1)
    torch.manual_seed(0)
    view = ViewMaker(32, patch_size=8, jitter=False)(chip)
    assert view.geometry.flips.any(dim=0).all(), "the sample should include both kinds of flip"
    from_pixels = patchify(view.images, 8).view(16, 16, 2, 64).mean(-1)
    torch.testing.assert_close(from_pixels, view.centres, atol=1e-3, rtol=0)


def test_nearest_pairs_of_identical_views_are_the_same_tokens() -> None:
    geometry = sample_geometry(4, (64, 64))
    centres = token_centres(geometry, (32, 32), 8)
    student, teacher = nearest_token_pairs(centres, centres, keep=6)
    assert torch.equal(student, teacher)
    # A horizontally flipped copy pairs each token with its mirror image in the view.
    geometry.flips[:] = torch.tensor([False, True])
    flipped = token_centres(geometry, (32, 32), 8)
    geometry.flips[:] = False
    student, teacher = nearest_token_pairs(token_centres(geometry, (32, 32), 8), flipped, keep=16)
    assert torch.equal(teacher % 4, 3 - student % 4) and torch.equal(teacher // 4, student // 4)


def test_block_masks_have_the_exact_ratio_and_block_shape() -> None:
    mask = block_mask(5, 8, 8, ratio=0.6, block=2)
    assert mask.shape == (5, 64)
    assert (mask.sum(1) == math.ceil(0.6 * 16) * 4).all()
    grid = mask.view(5, 4, 2, 4, 2)
    assert torch.equal(grid, grid[:, :, :1, :, :1].expand_as(grid))
    odd = block_mask(3, 7, 5, ratio=0.6, block=1)
    assert (odd.sum(1) == math.ceil(0.6 * 35)).all()


def test_masked_pixels_are_filled_and_unmasked_tokens_match_the_model() -> None:
    chips, config = real_batch()
    torch.manual_seed(0)
    objective = CmidObjective.build(config, {"crop": 64, "init": None, "options": TINY_OPTIONS})
    images = chips["optical"][:2]
    mask = block_mask(2, 8, 8, 0.6, 2)
    filled = fill_masked(images, mask, 8)
    patches, original = patchify(filled, 8), patchify(images, 8)
    assert torch.equal(patches[~mask], original[~mask])
    assert not torch.equal(patches[mask], original[mask])
    torch.testing.assert_close(encode_tokens(objective.encoder, images), objective.encoder(images))
    with_token = encode_tokens(objective.encoder, images, torch.zeros_like(mask), objective.mask_token)
    torch.testing.assert_close(with_token, objective.encoder(images))


def test_teacher_is_an_ema_of_the_student_and_gets_no_gradient() -> None:
    chips, config = real_batch()
    torch.manual_seed(0)
    objective = CmidObjective.build(config, {"crop": 64, "init": None, "options": TINY_OPTIONS})
    objective(chips)["loss"].backward()
    assert all(p.grad is None for p in objective.teacher.parameters())
    assert objective.mask_token.grad is not None and objective.decoder.weight.grad.abs().sum() > 0
    name = "transformer.layers.0.0.to_qkv.weight"
    with torch.no_grad():
        objective.encoder.get_parameter(name).add_(1.0)
    teacher_before = objective.teacher["encoder"].get_parameter(name).clone()
    objective.after_step(3, 10)
    m = ema_momentum(3, 10)
    expected = m * teacher_before + (1 - m) * objective.encoder.get_parameter(name)
    torch.testing.assert_close(objective.teacher["encoder"].get_parameter(name), expected)
    assert 0.996 < m < 1.0 and ema_momentum(10, 10) == 1.0


def test_queue_starts_with_real_keys_and_wraps_around() -> None:
    queue = QueueInfoNCE(dim=4, queue_size=6)
    keys = torch.nn.functional.normalize(torch.randn(4, 4), dim=1)
    queue(keys, keys)
    assert not bool(queue.queue_ready), "the first step must not see its own keys in the queue"
    queue.enqueue(keys)                                          # the first enqueue fills the queue
    assert torch.equal(queue.queue[:4], keys) and torch.equal(queue.queue[4:], keys[:2])
    queue.enqueue(keys)
    queue.enqueue(keys)
    assert int(queue.queue_pointer) == 2 and torch.equal(queue.queue[:2], keys[2:])


def test_first_step_never_contrasts_a_query_with_its_own_key() -> None:
    torch.manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    queue = QueueInfoNCE(dim=16, queue_size=64, temperature=0.2)
    first = queue(keys, keys)          # perfect queries: only the other 7 keys are negatives
    logits = torch.cat([(keys * keys).sum(1, keepdim=True), keys @ keys.T], dim=1) / 0.2
    logits[:, 1:].fill_diagonal_(float("-inf"))
    expected = torch.nn.functional.cross_entropy(logits, torch.zeros(8, dtype=torch.long))
    torch.testing.assert_close(first, expected)
    assert float(first) < 0.5       # with the key tiled into the queue it would exceed log(64 / 8 + 1)
    queue.enqueue(keys)             # later steps contrast with the keys of earlier steps
    assert bool(queue.queue_ready) and torch.equal(queue.queue[8:16], keys)
