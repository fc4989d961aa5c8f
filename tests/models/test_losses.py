"""Losses against hand-computed values and gradients."""
from __future__ import annotations

import math

import pytest
import torch

from autosample_ext.losses import bpr_loss, group_hinge_loss, hinge_loss


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_bpr_value_and_gradient_by_hand():
    pos = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    neg = torch.tensor([[0.0, 2.0], [1.0, -1.0]], dtype=torch.float64, requires_grad=True)
    loss = bpr_loss(pos, neg)
    # -log sigmoid(pos - neg) = softplus(neg - pos): differences -1, 1 | 1, -1
    expected = (softplus(-1) + softplus(1) + softplus(1) + softplus(-1)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    # d/d neg_bj = sigmoid(neg_bj - pos_b) / 4 ; d/d pos_b = -sum_j of the same
    g = [[sigmoid(-1) / 4, sigmoid(1) / 4], [sigmoid(1) / 4, sigmoid(-1) / 4]]
    torch.testing.assert_close(neg.grad, torch.tensor(g, dtype=torch.float64))
    torch.testing.assert_close(pos.grad, -torch.tensor(g, dtype=torch.float64).sum(1))


def test_bpr_one_negative_per_row_and_reductions():
    pos = torch.tensor([2.0, -1.0])
    neg = torch.tensor([0.5, 0.5])
    none = bpr_loss(pos, neg, reduction="none")
    assert none.shape == (2, 1)
    torch.testing.assert_close(none.squeeze(1), torch.tensor([softplus(-1.5), softplus(1.5)]))
    torch.testing.assert_close(bpr_loss(pos, neg, reduction="sum"), none.sum())
    torch.testing.assert_close(bpr_loss(pos, neg), none.mean())


def test_bpr_is_stable_for_large_gaps():
    pos = torch.tensor([100.0, -100.0], requires_grad=True)
    neg = torch.tensor([-100.0, 100.0])
    loss = bpr_loss(pos, neg, reduction="none").squeeze(1)
    assert torch.isfinite(loss).all()
    assert loss[0].item() == pytest.approx(0.0, abs=1e-30)
    assert loss[1].item() == pytest.approx(200.0)
    loss.sum().backward()
    torch.testing.assert_close(pos.grad, torch.tensor([0.0, -1.0]))


def test_hinge_value_and_gradient_by_hand():
    pos = torch.tensor([1.0, 0.0], requires_grad=True)
    neg = torch.tensor([[0.5, -2.0], [0.2, 3.0]], requires_grad=True)
    loss = hinge_loss(pos, neg, margin=1.0)
    # max(0, neg - pos + 1): 0.5, 0 | 1.2, 4.0
    assert loss.item() == pytest.approx((0.5 + 0.0 + 1.2 + 4.0) / 4)
    loss.backward()
    torch.testing.assert_close(neg.grad, torch.tensor([[0.25, 0.0], [0.25, 0.25]]))
    torch.testing.assert_close(pos.grad, torch.tensor([-0.25, -0.5]))
    assert hinge_loss(pos, neg, margin=0.0, reduction="sum").item() == pytest.approx(0.2 + 3.0)


def test_group_hinge_by_hand():
    # user 0: positives (2, 0), negatives (1, -1); user 1: positives (0,), negatives (0.5, 3)
    pos = torch.tensor([[2.0, 0.0], [0.0, 0.0]], requires_grad=True)
    neg = torch.tensor([[1.0, -1.0], [0.5, 3.0]], requires_grad=True)
    gamma = 1.0
    per_user = group_hinge_loss(pos, neg, gamma, reduction="none")
    # user 0: [1-2+1]+=0, [-1-2+1]+=0, [1-0+1]=2, [-1-0+1]=0 -> 2
    # user 1: pairs (0, .5)->1.5, (0, 3)->4, twice (two positives of value 0) -> 11
    torch.testing.assert_close(per_user, torch.tensor([2.0, 11.0]))
    loss = group_hinge_loss(pos, neg, gamma)
    assert loss.item() == pytest.approx(6.5)
    loss.backward()
    # mean over 2 users: d/d r_uj = (#active i) / 2, d/d r_ui = -(#active j) / 2
    torch.testing.assert_close(neg.grad, torch.tensor([[0.5, 0.0], [1.0, 1.0]]))
    torch.testing.assert_close(pos.grad, torch.tensor([[0.0, -0.5], [-1.0, -1.0]]))


def test_group_hinge_with_different_group_sizes_and_margin():
    pos = torch.tensor([[0.0, 1.0, 2.0]])
    neg = torch.tensor([[0.5]])
    # margin 0: [0.5-0]=0.5, [0.5-1]+=0, [0.5-2]+=0
    assert group_hinge_loss(pos, neg, margin=0.0).item() == pytest.approx(0.5)
    assert group_hinge_loss(pos, neg, margin=2.0).item() == pytest.approx(2.5 + 1.5 + 0.5)


def test_loss_shape_errors():
    with pytest.raises(ValueError, match="bpr_loss: pos_scores"):
        bpr_loss(torch.zeros(2, 1), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="hinge_loss: neg_scores"):
        hinge_loss(torch.zeros(2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="group_hinge_loss"):
        group_hinge_loss(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="margin"):
        hinge_loss(torch.zeros(2), torch.zeros(2), margin=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        bpr_loss(torch.zeros(2), torch.zeros(2), reduction="avg")  # type: ignore[arg-type]


def test_empty_batch_gives_zero():
    assert bpr_loss(torch.zeros(0), torch.zeros(0, 3)).item() == 0.0
