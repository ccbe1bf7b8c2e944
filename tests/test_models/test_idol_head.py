# Copyright (c) mmookd contributors. All rights reserved.
"""IDOLHead inside the Deformable-DETR of a tiny IDOL
(docs/hyperparameters.md §3, §5, §9).
"""
import os.path as osp

import pytest
import torch
from mmdet.models.layers import inverse_sigmoid
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmookd.models  # noqa: F401  (registers the models)

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """One intra-op thread: on a shared, oversubscribed CPU torch's OpenMP
    threads spin against each other (30x slower steps were measured)."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    cfg = Config.fromfile(TOY_CFG)
    m = MODELS.build(cfg.model)
    m.init_weights()
    return m.eval()


def samples(batch, img_hw, pad_hw):
    out = []
    for _ in range(batch):
        s = DetDataSample()
        s.set_metainfo(
            dict(img_shape=img_hw, batch_input_shape=pad_hw, ori_shape=img_hw))
        out.append(s)
    return out


def test_init_follows_spec(model):
    head = model.head
    num_layers = model.detector.decoder.num_layers
    assert len(head.cls_branches) == len(head.reg_branches) == num_layers
    # per-layer clones (with_box_refine), not shared
    assert head.reg_branches[0] is not head.reg_branches[1]
    prior_bias = -torch.log(torch.tensor((1 - 0.01) / 0.01))
    for cls in head.cls_branches:
        torch.testing.assert_close(cls.bias, prior_bias.expand_as(cls.bias))
    for i, reg in enumerate(head.reg_branches):
        assert len([m for m in reg if isinstance(m, torch.nn.Linear)]) == 3
        assert torch.count_nonzero(reg[-1].weight) == 0
        expected = [0., 0., -2., -2.] if i == 0 else [0.] * 4
        assert reg[-1].bias.tolist() == expected
    # embedding MLP 64-64-64-64 in the toy config (256 in the full one)
    assert len(head.embed_branch.layers) == 3


def test_output_shapes_per_layer(model):
    imgs = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = model.forward_frames(imgs, samples(2, (64, 96), (64, 96)))
    num_layers, q = 2, 30
    assert out['hidden_states'].shape == (num_layers, 2, q, 64)
    assert out['cls_scores'].shape == (num_layers, 2, q, 8)
    assert out['bbox_preds'].shape == (num_layers, 2, q, 4)
    assert len(out['references']) == num_layers + 1
    assert out['references'][0].shape == (2, q, 2)
    for ref in out['references'][1:]:
        assert ref.shape == (2, q, 4)
    assert out['embeds'].shape == (2, q, 64)
    assert out['mask_feats'].shape == (2, 8, 8, 12)
    assert ((out['bbox_preds'] > 0) & (out['bbox_preds'] < 1)).all()


def test_box_refinement(model):
    """§3: layer 0 box = sigmoid(delta + [logit(ref_xy), 0, 0]) from the
    2-D initial reference; later layers refine the previous 4-D box. With
    the initial weights layer 0 is the identity on the reference point with
    w = h = sigmoid(-2)."""
    imgs = torch.randn(1, 3, 64, 64)
    metas = samples(1, (64, 64), (64, 64))
    with torch.no_grad():
        out = model.forward_frames(imgs, metas)
    ref0 = out['references'][0]
    box0 = out['bbox_preds'][0]
    torch.testing.assert_close(box0[..., :2], ref0)
    torch.testing.assert_close(
        box0[..., 2:],
        torch.full_like(box0[..., 2:], torch.sigmoid(torch.tensor(-2.))))
    # now with non-trivial box heads
    head = model.head
    saved = [reg[-1].weight.clone() for reg in head.reg_branches]
    try:
        for reg in head.reg_branches:
            torch.nn.init.normal_(reg[-1].weight, std=0.05)
        with torch.no_grad():
            out = model.forward_frames(imgs, metas)
            hs, refs = out['hidden_states'], out['references']
            delta0 = head.reg_branches[0](hs[0])
            expected0 = (delta0 + torch.cat(
                [inverse_sigmoid(refs[0]),
                 torch.zeros_like(refs[0])], -1)).sigmoid()
            torch.testing.assert_close(out['bbox_preds'][0], expected0)
            for layer in range(1, hs.size(0)):
                delta = head.reg_branches[layer](hs[layer])
                expected = (delta + inverse_sigmoid(refs[layer])).sigmoid()
                torch.testing.assert_close(out['bbox_preds'][layer], expected)
            # the decoder's refined reference of layer l is the box of l
            for layer in range(hs.size(0)):
                torch.testing.assert_close(
                    out['bbox_preds'][layer],
                    refs[layer + 1],
                    atol=1e-5,
                    rtol=1e-5)
        assert not torch.allclose(out['bbox_preds'][0][..., :2], refs[0])
    finally:
        for reg, w in zip(head.reg_branches, saved):
            reg[-1].weight.data.copy_(w)


def test_detection_losses_sum_over_npos(model):
    head = model.head
    torch.manual_seed(0)
    q, k = 5, 8
    cls_scores = torch.randn(1, q, k)
    bbox_preds = torch.tensor([[[0.3, 0.3, 0.2, 0.2], [0.5, 0.5, 0.4, 0.4],
                                [0.7, 0.6, 0.2, 0.3], [0.2, 0.8, 0.1, 0.1],
                                [0.5, 0.5, 0.9, 0.9]]])
    gt = InstanceData(
        labels=torch.tensor([2, 5]),
        bboxes=torch.tensor([[10., 10., 30., 30.], [50., 40., 90., 80.]]))
    meta = dict(img_shape=(100, 100))
    # queries 0, 1 -> GT 0; query 2 -> GT 1 (one-to-many)
    result = AssignResult(2, torch.tensor([1, 1, 2, 0, 0]), None,
                          torch.tensor([2, 2, 5, -1, -1]))
    loss_cls, loss_bbox, loss_iou = head.loss_det_single(
        cls_scores, bbox_preds, [result], [gt], [meta], avg_factor=3.0)
    targets = torch.zeros(q, k)
    targets[0, 2] = targets[1, 2] = targets[2, 5] = 1
    p = cls_scores[0].sigmoid()
    pt = torch.where(targets > 0, p, 1 - p)
    alpha = torch.where(targets > 0, 0.25, 0.75)
    focal = (-alpha * (1 - pt)**2 * torch.log(pt)).sum()
    torch.testing.assert_close(loss_cls, 2.0 * focal / 3.0)
    gt_cxcywh = torch.tensor([[0.2, 0.2, 0.2, 0.2], [0.2, 0.2, 0.2, 0.2],
                              [0.7, 0.6, 0.4, 0.4]])
    l1 = (bbox_preds[0, :3] - gt_cxcywh).abs().sum()
    torch.testing.assert_close(loss_bbox, 5.0 * l1 / 3.0)
    assert loss_iou > 0


def test_assign_uses_absolute_boxes(model):
    head = model.head
    bbox_preds = torch.tensor([[[0.25, 0.25, 0.1, 0.1], [0.75, 0.75, 0.1,
                                                         0.1]]])
    cls_scores = torch.zeros(1, 2, 8)
    gt = InstanceData(
        labels=torch.tensor([1]), bboxes=torch.tensor([[60., 30., 100., 50.]]))
    # image 120 x 60 (w x h): only query 1's centre is inside the GT box
    results = head.assign(cls_scores, bbox_preds, [gt],
                          [dict(img_shape=(60, 120))])
    assert results[0].gt_inds.tolist() == [0, 1]
    assert results[0].get_extra_property('matched_query_per_gt').tolist() \
        == [1]
