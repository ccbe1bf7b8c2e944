# Copyright (c) mmookd contributors. All rights reserved.
"""CosineKDLoss: L_KD of the OOKD paper (eq. 4)."""
import pytest
import torch
from mmdet.registry import MODELS

import mmookd  # noqa: F401
from mmookd.models.losses import CosineKDLoss


def test_built_by_mmdet_registry():
    loss = MODELS.build(dict(type='CosineKDLoss', loss_weight=2.0))
    assert isinstance(loss, CosineKDLoss)
    assert loss.loss_weight == 2.0 and loss.detach_target


def test_identical_opposite_orthogonal():
    loss = CosineKDLoss()
    f = torch.tensor([[1., 2., 3.], [0., -1., 4.]])
    assert loss(f, f.clone()).item() == pytest.approx(0., abs=1e-6)
    # scale does not matter
    assert loss(f, 3 * f).item() == pytest.approx(0., abs=1e-6)
    assert loss(f, -f).item() == pytest.approx(2., abs=1e-6)
    a = torch.tensor([[1., 0.], [0., 2.]])
    b = torch.tensor([[0., 5.], [-1., 0.]])
    assert loss(a, b).item() == pytest.approx(1., abs=1e-6)
    # mixed pairs: (0 + 2 + 1) / 3 per pair
    pred = torch.tensor([[1., 0.], [1., 0.], [1., 0.]])
    target = torch.tensor([[2., 0.], [-1., 0.], [0., 1.]])
    assert loss(pred, target).item() == pytest.approx(1., abs=1e-6)
    per_pair = loss(pred, target, reduction_override='none')
    torch.testing.assert_close(per_pair, torch.tensor([0., 2., 1.]))
    assert loss(
        pred, target, reduction_override='sum').item() == pytest.approx(3.)


def test_weight_avg_factor_and_loss_weight():
    pred = torch.tensor([[1., 0.], [1., 0.], [1., 0.]])
    target = torch.tensor([[2., 0.], [-1., 0.], [0., 1.]])
    loss = CosineKDLoss(loss_weight=0.5)
    weight = torch.tensor([1., 0., 2.])
    # (0 * 1 + 2 * 0 + 1 * 2) / 3 * 0.5
    assert loss(pred, target, weight=weight).item() == pytest.approx(1 / 3)
    # sum / avg_factor * 0.5
    assert loss(
        pred, target, avg_factor=6.).item() == pytest.approx(3 / 6 * 0.5)


def test_gradient_matches_hand_derivation_and_gradcheck():
    torch.manual_seed(0)
    pred = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    loss = CosineKDLoss()
    loss(pred, target).backward()
    # d(1 - cos(p, t))/dp = -(t / (|p||t|) - cos * p / |p|^2), mean over M
    with torch.no_grad():
        p_norm = pred.norm(dim=1, keepdim=True)
        t_norm = target.norm(dim=1, keepdim=True)
        cos = (pred * target).sum(1, keepdim=True) / (p_norm * t_norm)
        expected = -(target / (p_norm * t_norm) - cos * pred / p_norm**2) / 4
    torch.testing.assert_close(pred.grad, expected)
    # the teacher feature gets no gradient
    assert target.grad is None
    assert torch.autograd.gradcheck(lambda p: loss(p, target.detach()),
                                    (pred.detach().requires_grad_(), ))


def test_target_gradient_when_not_detached():
    pred = torch.randn(3, 4, requires_grad=True)
    target = torch.randn(3, 4, requires_grad=True)
    CosineKDLoss(detach_target=False)(pred, target).backward()
    assert target.grad is not None and target.grad.abs().sum() > 0


def test_no_pairs_gives_connected_zero():
    pred = torch.randn(0, 8, requires_grad=True)
    target = torch.randn(0, 8)
    loss = CosineKDLoss()
    out = loss(pred, target)
    assert out.shape == () and out.item() == 0.
    assert out.grad_fn is not None
    out.backward()
    assert pred.grad is not None and pred.grad.shape == (0, 8)
    out = loss(pred, target, reduction_override='none')
    assert out.shape == (0, ) and out.grad_fn is not None
    # a zero-pair batch from a real parameter still reaches it (DDP)
    layer = torch.nn.Linear(4, 8)
    loss(layer(torch.randn(0, 4)), target).backward()
    assert layer.weight.grad is not None
    assert torch.count_nonzero(layer.weight.grad) == 0


def test_half_precision_and_shape_check():
    pred = torch.tensor([[1., 0.]], dtype=torch.float16)
    out = CosineKDLoss()(pred, -pred)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(2.)
    with pytest.raises(AssertionError, match='must both be'):
        CosineKDLoss()(torch.zeros(2, 3), torch.zeros(2, 4))
