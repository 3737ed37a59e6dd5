"""Recipe options that restore the published form of an objective (docs/pretraining.md)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from backend.errors import UserError
from backend.training.objectives.cmid import CmidObjective
from backend.training.objectives.croma import CromaObjective, symmetric_info_nce
from tests.backend.test_cmid import TINY_OPTIONS as CMID_TINY
from tests.backend.test_msad import real_batch


def test_croma_released_keys_train_only_the_query_side() -> None:
    torch.manual_seed(0)
    z_a = F.normalize(torch.randn(6, 8), dim=1).requires_grad_()
    z_b = F.normalize(torch.randn(6, 8), dim=1).requires_grad_()
    scale = torch.tensor(2.0)
    labels = torch.arange(6)
    released = torch.autograd.grad(symmetric_info_nce(z_a, z_b, scale, key_grad=False), (z_a, z_b))
    # the released code: each direction's gradient reaches only its query embeddings
    def half(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return 0.5 * F.cross_entropy(scale.exp() * query @ key.detach().T, labels)

    expected_a = torch.autograd.grad(half(z_a, z_b), z_a)[0]
    expected_b = torch.autograd.grad(half(z_b, z_a), z_b)[0]
    torch.testing.assert_close(released[0], expected_a)
    torch.testing.assert_close(released[1], expected_b)
    ours = torch.autograd.grad(symmetric_info_nce(z_a, z_b, scale), (z_a, z_b))
    assert not torch.allclose(ours[0], released[0]), "the default keeps the key-side gradient"


def test_croma_contrastive_keys_option_is_checked() -> None:
    _, config = real_batch()
    objective = CromaObjective.build(config, {"options": {"contrastive_keys": "released"}})
    assert objective.key_grad is False
    assert CromaObjective.build(config, {"options": {}}).key_grad is True
    with pytest.raises(UserError, match="contrastive_keys"):
        CromaObjective.build(config, {"options": {"contrastive_keys": "none"}})


@pytest.mark.parametrize("head", ["mean", "gap_ffn"])
def test_cmid_global_head_is_plain_pooling_by_default(head: str) -> None:
    chips, config = real_batch()
    torch.manual_seed(0)
    options = {**CMID_TINY, **({} if head == "mean" else {"global_head": head})}
    objective = CmidObjective.build(config, {"crop": 64, "init": None, "options": options})
    objective(chips)["loss"].backward()
    pool_grads = [p.grad for p in objective.pool.parameters()]
    assert all(p.grad is not None for p in objective.projector.parameters())
    if head == "mean":       # published: GAP of the tokens straight into the projector
        assert all(g is None for g in pool_grads)
    else:
        assert all(g is not None for g in pool_grads)
    with pytest.raises(UserError, match="global_head"):
        CmidObjective.build(config, {"crop": 64, "init": None,
                                     "options": {**CMID_TINY, "global_head": "cls"}})
