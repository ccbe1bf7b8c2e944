# Copyright (c) mmookd contributors. All rights reserved.
"""The frame-wise read-out of the teacher (``VITAAggregator(
frame_readout=True)``, our design): frame ``t``'s boxes and masks are
decoded from the association-weighted frame queries of frame ``t``, the
class and the distilled embedding from the clip-level read-out."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.models.layers.transformer import inverse_sigmoid
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_idol import make_video

import mmookd.models  # noqa: F401  (registers the models)
from mmookd.models.aggregators import VITAAggregator

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/vita-teacher_r18-tiny_1xb2-toyvis.py')

pytestmark = pytest.mark.usefixtures('single_thread')


def build_teacher():
    cfg = Config.fromfile(TOY_CFG)
    cfg.model.online_checkpoint = None
    cfg.model.aggregator.update(query_readout=True, frame_readout=True)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_frame_readout_needs_query_readout():
    with pytest.raises(ValueError, match='frame_readout=True needs'):
        VITAAggregator(
            embed_dims=8,
            num_frame_queries=3,
            num_queries=2,
            frame_readout=True)


def test_frame_wise_readout_by_hand():
    # one layer, one clip, 2 queries, 2 frames, 3 tokens of 2 channels
    tokens = torch.tensor([[[1., 0.], [0., 1.], [2., 2.]],
                           [[3., 0.], [0., 3.], [4., 4.]]])[None]
    assoc = torch.zeros(1, 1, 2, 2, 3)
    assoc[0, 0, 0, 0, 0] = 0.5  # query 0: token 0 in frame 0 (presence .5)
    assoc[0, 0, 0, 1, 2] = 1.0  # ... token 2 in frame 1
    assoc[0, 0, 1, 0, 1] = 0.25  # query 1: half token 1, half token 2
    assoc[0, 0, 1, 0, 2] = 0.25
    assoc[0, 0, 1, 1, 1] = 1.0
    out = VITAAggregator.frame_wise_readout(assoc, tokens)
    expected = torch.tensor([[[1., 0.], [4., 4.]], [[1., 1.5], [0., 3.]]])
    assert torch.allclose(out[0, 0], expected)


def test_boxes_and_masks_follow_the_frame_of_the_query():
    """A frame-wise query that differs per frame gives per-frame box
    residuals; the clip-level query gives one residual for all frames."""
    model = build_teacher()
    head = model.head
    for param in head.reg_branches[-1].parameters():  # zero-initialised
        torch.nn.init.normal_(param, std=0.1)
    queries = torch.randn(3, 64)
    per_frame = torch.randn(3, 2, 64)
    assoc = torch.rand(3, 2, 30)
    refs = torch.rand(2, 30, 4) * 0.5 + 0.25
    _, _, clip_boxes = model.decode(queries, assoc, refs)
    _, ref_pts, frame_boxes = model.decode(queries, assoc, refs, per_frame)
    delta = head.reg_branches[-1](per_frame).movedim(-2, -3)  # (T, N, 4)
    assert torch.allclose(
        frame_boxes, (delta + inverse_sigmoid(ref_pts)).sigmoid(), atol=1e-6)
    assert not torch.allclose(frame_boxes, clip_boxes)
    assert model.mask_queries(queries, per_frame, 1) is not None
    assert torch.equal(
        model.mask_queries(queries, per_frame, 1), per_frame[:, 1])
    assert model.mask_queries(queries, None, 1) is queries


def test_frame_readout_trains_and_infers():
    model = build_teacher()
    data = model.data_preprocessor(
        copy.deepcopy(make_video(num_frames=3, hw=(64, 64))), training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    gate = model.aggregator.readout_gate
    assert gate.grad is not None and gate.grad.abs().sum() > 0
    model.eval()
    data = model.data_preprocessor(
        copy.deepcopy(make_video(num_frames=3, hw=(64, 64), with_gt=False)),
        training=False)
    with torch.no_grad():
        video = model(**data, mode='predict')[0]
        frames = data['inputs'][0]
        knowledge = model.forward_clip(frames, [v for v in video])
    assert knowledge['bbox_preds'].shape[:2] == (3, 20)
    # boxes differ over time because each frame decodes its own query
    assert not torch.allclose(knowledge['bbox_preds'][0],
                              knowledge['bbox_preds'][1])
