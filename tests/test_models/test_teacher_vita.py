# Copyright (c) mmookd contributors. All rights reserved.
"""The VITA-faithful teacher: masks matched and supervised on all frames
(empty target where an instance is absent), the "absent" slot of the
association, the presence gate of the masks and VITA's similarity loss,
each on a hand case."""
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_idol import make_video
from test_object_token_aggregator import vita_aggregator_kwargs

import mmookd.models  # noqa: F401  (registers the models)
from mmookd.models.aggregators import VITAAggregator
from mmookd.models.vis.offline_teacher import gate_mask_logits

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/vita-teacher_r18-tiny_1xb2-toyvis.py')
R50_CFG = osp.join(
    REPO, 'configs/teacher/vita-teacher_r50_8xb2-20k_youtubevis2021.py')

pytestmark = pytest.mark.usefixtures('single_thread')


def build_teacher(**train_cfg):
    """The toy teacher made VITA-faithful (the toy config reads its query
    out of the frame queries, docs/changes_from_papers.md 2.11)."""
    cfg = Config.fromfile(TOY_CFG)
    cfg.model.online_checkpoint = None
    cfg.model.aggregator.update(query_readout=False, frame_readout=False)
    cfg.model.train_cfg.update(train_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_real_teacher_is_vita_faithful_by_default():
    """The real configs distil VITA's decoder output; the toy one reads it
    out of the frame queries (a few hundred CPU iterations cannot train
    the decoder output, docs/benchmarks.md)."""
    real = Config.fromfile(R50_CFG).model
    assert not real.aggregator.query_readout  # f_off = decoder output
    assert not real.aggregator.get('frame_readout', False)
    toy = Config.fromfile(TOY_CFG).model.aggregator
    assert toy.query_readout and toy.frame_readout
    model = build_teacher()
    assert model.aggregator.absent_slot
    assert model.loss_sim is not None and model.loss_assoc is None
    assert model.train_cfg['match_on_absent_frames']
    assert model.train_cfg['mask_on_absent_frames']
    kinds = sorted(model.cost_kind(c) for c in model.match_costs)
    assert kinds == ['box', 'box', 'cls', 'mask', 'mask']


def test_gate_mask_logits_by_hand():
    logits = torch.zeros(2, 1, 1)  # sigmoid 0.5
    gated = gate_mask_logits(logits, torch.tensor([0.5, 1.0]))
    # 0.5 * 0.5 = 0.25 -> log(0.25 / 0.75); presence 1 keeps the logit
    assert gated[0].item() == pytest.approx(math.log(1 / 3), abs=1e-5)
    assert gated[1].item() == pytest.approx(0.0, abs=1e-5)
    # presence 0: empty mask whatever the head says
    assert torch.sigmoid(
        gate_mask_logits(torch.full((1, 2, 2), 20.),
                         torch.zeros(1))).max() < 1e-5


def test_absent_slot_lets_a_query_be_absent():
    agg = VITAAggregator(
        **vita_aggregator_kwargs(2, 2, 1, (1, 1), 2, 1, 4, absent_slot=True))
    with torch.no_grad():
        for proj in (agg.assoc_query_proj, agg.assoc_frame_proj):
            proj.weight.copy_(torch.eye(2))
            proj.bias.zero_()
    queries = torch.tensor([[[[10., 0.]]]])  # (L, B, N, D)
    # frame 0 holds the query's object (token 0), frame 1 only others
    memory = torch.tensor([[[[1., 0.], [0., 1.]], [[-1., 0.], [-1., 0.]]]])
    assoc = agg.associate(queries, memory).exp()[0, 0, 0]  # (T, fQ)
    s = 10 / math.sqrt(2)
    # frame 0: softmax over (s, 0, null 0); frame 1: (-s, -s, null 0)
    z0 = math.exp(s) + 2
    assert assoc[0].tolist() == pytest.approx([math.exp(s) / z0, 1 / z0])
    z1 = 2 * math.exp(-s) + 1
    assert assoc[1].tolist() == pytest.approx([math.exp(-s) / z1] * 2)
    presence = assoc.sum(-1)
    assert presence[0] > 0.99 and presence[1] < 0.002
    # without the slot a frame always picks some query
    agg.absent_slot = False
    assert agg.associate(queries, memory).exp()[0, 0, 0, 1].sum().item() \
        == pytest.approx(1.0)


def test_mask_cost_on_the_absent_frame_decides_the_match():
    """Two queries identical where the instance is present; in the frame
    where it is absent one still predicts a mask, the other an empty one:
    VITA's all-frame mask cost picks the empty one."""
    model = build_teacher()
    video = make_video(num_frames=2, hw=(64, 64))
    data = model.data_preprocessor(video, training=True)
    frames = list(data['data_samples'][0])
    frames[1].gt_instances = frames[1].gt_instances[torch.tensor([1])]
    tubes = model.clip_targets(frames)  # id 1 absent from frame 1
    assert tubes.present.tolist() == [[True, True], [False, True]]
    metas = [f.metainfo for f in frames]
    h, w = metas[0]['img_shape']
    from mmdet.structures.bbox import bbox_xyxy_to_cxcywh
    norm = torch.tensor([w, h, w, h], dtype=torch.float32)
    gt_boxes = bbox_xyxy_to_cxcywh(tubes.bboxes / norm)
    boxes = gt_boxes[:, [0, 0, 1]]  # queries 0, 1 follow id 1, query 2 id 2
    cls_logits = torch.zeros(3, 8)
    targets = [
        model.mask_head.get_mask_targets(f.gt_instances.masks,
                                         f.metainfo['batch_input_shape'],
                                         torch.device('cpu')) for f in frames
    ]

    def mask_fn(t):
        full = model._tube_masks(targets[t], tubes.rows[t], (16, 16))
        preds = torch.full((3, 16, 16), -10.)
        preds[0] = preds[1] = targets[0][0] * 20 - 10  # id 1 in frame 0
        preds[2] = full[1] * 20 - 10
        if t == 1:
            preds[1] = -10.  # query 1 says "not here"; query 0 does not
        return preds, full

    rows, cols = model.match_clip(
        cls_logits, boxes, tubes, metas, mask_fn=mask_fn)
    assert dict(zip(cols.tolist(), rows.tolist())) == {0: 1, 1: 2}
    # the old matching (costs only where present) cannot tell them apart
    old = build_teacher(match_on_absent_frames=False)
    cost_calls = []

    def spy(t):
        cost_calls.append(t)
        return mask_fn(t)

    old.match_clip(cls_logits, boxes, tubes, metas, mask_fn=spy)
    assert cost_calls == [0, 1]  # frame 1 only for id 2


def test_masks_supervised_on_all_frames_empty_where_absent():
    model = build_teacher().train()
    video = make_video(num_frames=3, hw=(64, 64))
    gt = video['data_samples'][0][1].gt_instances
    video['data_samples'][0][1].gt_instances = gt[torch.tensor([1])]
    data = model.data_preprocessor(video, training=True)
    seen = []
    original = model.mask_head.loss

    def spy(preds, targets, num):
        seen.append((preds.detach().clone(), targets.clone()))
        return original(preds, targets, num)

    model.mask_head.loss = spy
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    assert {'loss_sim', 'd0.loss_sim'} <= set(losses)
    # per layer: 2 matched queries x 3 frames, frame-major
    assert [p.size(0) for p, _ in seen] == [6, 6]
    targets = seen[-1][1]
    areas = targets.flatten(1).sum(1).tolist()
    # frame 1 (rows 2, 3): instance id 1 (tube 0) is absent -> empty target
    frame1 = areas[2:4]
    assert sorted(a == 0 for a in frame1) == [False, True]
    assert all(a > 0 for a in areas[:2] + areas[4:])


def test_similarity_loss_by_hand():
    model = build_teacher()
    d = model.aggregator.embed_dims
    torch.manual_seed(3)
    frame_embeds = torch.randn(2, 3, d)  # (T, fQ', D)
    slots = torch.arange(3).expand(2, 3)
    token_targets = torch.tensor([[0, -1, 1], [-1, 0, -1]])
    query_embeds = torch.randn(2, d)
    cols = torch.tensor([1, 0])
    logits, target = model.similarity_pairs(query_embeds, cols, frame_embeds,
                                            slots, token_targets)
    embeds = torch.stack([
        frame_embeds[0, 0], frame_embeds[0, 2], frame_embeds[1, 1],
        query_embeds[0], query_embeds[1]
    ])
    ids = torch.tensor([0, 1, 0, 1, 0])
    assert torch.allclose(logits, embeds @ embeds.t() / math.sqrt(d))
    assert torch.equal(target, (ids[:, None] == ids[None]).float())
    loss = model.similarity_loss([(logits, target)], logits)
    expected = 0.5 * F.binary_cross_entropy_with_logits(logits, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_readout_option_still_trains():
    """``query_readout=True`` (our design) stays available next to the
    VITA default."""
    cfg = Config.fromfile(TOY_CFG)
    cfg.model.online_checkpoint = None
    cfg.model.aggregator.update(query_readout=True, frame_readout=False)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = model.data_preprocessor(
        copy.deepcopy(make_video(num_frames=2, hw=(64, 64))), training=True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
