# Copyright (c) mmookd contributors. All rights reserved.
"""IDOLMaskHead (docs/hyperparameters.md §4, §9)."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.mask import BitmapMasks
from mmengine.registry import init_default_scope

import mmookd.models  # noqa: F401  (registers the heads)

init_default_scope('mmdet')


def build_head(**kwargs):
    head = MODELS.build(dict(type='IDOLMaskHead', **kwargs))
    head.init_weights()
    return head


def fake_memory(batch, img_hw, channels=256, strides=(8, 16, 32, 64)):
    """Flattened encoder memory of a padded (H, W) input."""
    h, w = img_hw
    shapes = torch.tensor([[-(-h // s), -(-w // s)] for s in strides])
    sizes = shapes.prod(1)
    starts = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    memory = torch.randn(batch, int(sizes.sum()), channels)
    return memory, shapes, starts


def test_num_params_is_169():
    head = build_head()
    # (8 + 2) * 8 + 8 * 8 + 8 * 1 weights, 8 + 8 + 1 biases
    assert head.num_params == 169
    assert head.controller.layers[-1].out_features == 169
    assert [layer.in_features for layer in head.controller.layers] == \
        [256, 256, 256]
    weights, biases = head.parse_dynamic_params(torch.randn(5, 169))
    assert [tuple(w.shape) for w in weights] == [(40, 10, 1, 1), (40, 8, 1, 1),
                                                 (5, 8, 1, 1)]
    assert [tuple(b.shape) for b in biases] == [(40, ), (40, ), (5, )]


def test_num_params_general_channels():
    # mmdet's CondInst parser would mis-shape this (in != hidden channels)
    head = build_head(mask_feat_channels=4, dyn_channels=6, num_dyn_layers=4)
    assert head.num_params == (6 * 6 + 6 * 6 + 6 * 6 + 6) + (6 + 6 + 6 + 1)
    weights, _ = head.parse_dynamic_params(torch.randn(3, head.num_params))
    assert [tuple(w.shape) for w in weights] == [(18, 6, 1, 1), (18, 6, 1, 1),
                                                 (18, 6, 1, 1), (3, 6, 1, 1)]


@pytest.mark.parametrize('img_hw', [(64, 96), (96, 32)])
def test_output_stride_4(img_hw):
    head = build_head()
    memory, shapes, starts = fake_memory(2, img_hw)
    mask_feats = head.forward_mask_feats(memory, shapes, starts)
    h, w = img_hw
    assert mask_feats.shape == (2, 8, h // 8, w // 8)
    masks = head.forward_masks(mask_feats[0], torch.randn(7, 256),
                               torch.rand(7, 2) * 30)
    assert masks.shape == (7, h // 4, w // 4)
    empty = head.forward_masks(mask_feats[0], torch.randn(0, 256),
                               torch.zeros(0, 2))
    assert empty.shape == (0, h // 4, w // 4)


def test_relative_coordinates_hand_case():
    head = build_head()
    # stride-8 pixel centres: x in {4, 12, 20}, y in {4, 12}
    ref = torch.tensor([[10., 6.], [0., 20.]])
    rel = head.relative_coords(ref, (2, 3))
    assert rel.shape == (2, 2, 2, 3)
    expected_dx0 = torch.tensor([[6., -2., -10.], [6., -2., -10.]])
    expected_dy0 = torch.tensor([[2., 2., 2.], [-6., -6., -6.]])
    assert torch.equal(rel[0, 0], expected_dx0)
    assert torch.equal(rel[0, 1], expected_dy0)
    # absolute pixels, no normalisation
    assert torch.equal(rel[1, 0], torch.tensor([[-4., -12., -20.]] * 2))
    assert torch.equal(rel[1, 1], torch.tensor([[16.] * 3, [8.] * 3]))


def test_dynamic_convs_equal_per_instance_mlp():
    """Grouped dynamic convs == a per-pixel MLP with each query's params,
    on [rel_x, rel_y, features] and then aligned-bilinear x2."""
    torch.manual_seed(0)
    head = build_head(in_channels=16)
    feat = torch.randn(8, 3, 5)
    queries = torch.randn(2, 16)
    refs = torch.tensor([[7., 3.], [30., 11.]])
    out = head.forward_masks(feat, queries, refs)
    params = head.controller(queries)
    rel = head.relative_coords(refs, (3, 5))
    for i in range(2):
        x = torch.cat([rel[i], feat]).flatten(1).t()  # (15, 10)
        p = params[i]
        w1, w2, w3 = p[:80].view(8, 10), p[80:144].view(8, 8), p[144:152]
        b1, b2, b3 = p[152:160], p[160:168], p[168:169]
        y = F.relu(x @ w1.t() + b1)
        y = F.relu(y @ w2.t() + b2)
        y = (y @ w3.view(1, 8).t() + b3).t().reshape(1, 1, 3, 5)
        # aligned bilinear x2 (CondInst): replicate pad, align_corners
        y = F.pad(y, (0, 1, 0, 1), mode='replicate')
        y = F.interpolate(y, size=(7, 11), mode='bilinear', align_corners=True)
        y = F.pad(y, (1, 0, 1, 0), mode='replicate')[..., :6, :10]
        torch.testing.assert_close(out[i], y[0, 0], rtol=1e-5, atol=1e-5)


def test_mask_branch_top_down_shapes_and_relu():
    head = build_head(in_channels=32, branch_mid_channels=16)
    feats = [
        torch.randn(1, 32, 8, 12),
        torch.randn(1, 32, 4, 6),
        torch.randn(1, 32, 2, 3)
    ]
    out = head.mask_branch(feats)
    assert out.shape == (1, 8, 8, 12)
    assert (out >= 0).all()  # ReLU after the last conv (§4)
    # the stride-64 level is not used: changing it changes nothing
    memory, shapes, starts = fake_memory(1, (64, 96), channels=32)
    a = head.forward_mask_feats(memory, shapes, starts)
    memory[:, int(starts[3]):] += 5
    b = head.forward_mask_feats(memory, shapes, starts)
    assert torch.equal(a, b)


def test_mask_targets_stride4_offset2():
    head = build_head()
    masks = torch.zeros(1, 13, 18, dtype=torch.uint8)
    masks[0, 2, 6] = 1  # (2 + 4*0, 2 + 4*1) -> target (0, 1)
    masks[0, 3, 6] = 1  # not on the sampling grid
    masks[0, 10, 14] = 1  # (2 + 4*2, 2 + 4*3) -> target (2, 3)
    bitmap = BitmapMasks(masks.numpy(), 13, 18)
    targets = head.get_mask_targets(bitmap, (16, 32), torch.device('cpu'))
    assert targets.shape == (1, 4, 8)  # padded 16 x 32 at stride 4
    expected = torch.zeros(1, 4, 8)
    expected[0, 0, 1] = 1
    expected[0, 2, 3] = 1
    assert torch.equal(targets, expected)


def test_losses_normalisation():
    head = build_head()
    torch.manual_seed(0)
    preds = torch.randn(3, 4, 5)
    targets = (torch.rand(3, 4, 5) > 0.5).float()
    loss_mask, loss_dice = head.loss(preds, targets, avg_factor=2.0)
    p = preds.sigmoid()
    pt = torch.where(targets > 0, p, 1 - p)
    alpha = torch.where(targets > 0, 0.25, 0.75)
    focal = -alpha * (1 - pt)**2 * torch.log(pt)
    expected_mask = 2.0 * focal.flatten(1).mean(1).sum() / 2.0
    inter = (p * targets).flatten(1).sum(1)
    dice = 1 - (2 * inter + 1) / (
        p.flatten(1).sum(1) + targets.flatten(1).sum(1) + 1)
    expected_dice = 5.0 * dice.sum() / 2.0
    torch.testing.assert_close(loss_mask, expected_mask, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss_dice, expected_dice, rtol=1e-4, atol=1e-6)
    zero_mask, zero_dice = head.loss(preds[:0], targets[:0], 1.0)
    assert zero_mask.item() == 0 and zero_dice.item() == 0
