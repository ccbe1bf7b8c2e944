# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's offline teacher (paper Sec. 3.2): frozen IDOL + aggregator.

The IDOL part must stay bit-identical and gradient-free while the
aggregator trains; ``forward_clip`` is the distiller's API; offline
inference is chunked and memory-bounded; the shipped configs build and
train. Synthetic clips from ``test_idol.make_video``, CPU, random weights.
"""
import copy
import os.path as osp

import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from test_idol import make_video

import mmookd.models  # noqa: F401  (registers the models)
from mmookd.models import OfflineTeacher
from mmookd.models.vis.offline_teacher import DEFAULT_MATCH_COSTS

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/vita-teacher_r18-tiny_1xb2-toyvis.py')
TOY_TA_CFG = osp.join(REPO,
                      'configs/toy/token-average-teacher_r18-tiny_toyvis.py')
R50_CFG = osp.join(
    REPO, 'configs/teacher/vita-teacher_r50_8xb2-20k_youtubevis2021.py')


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def toy_cfg(path=TOY_CFG):
    cfg = Config.fromfile(path)
    cfg.model.online_checkpoint = None
    return cfg


def build(model_cfg, seed=0) -> OfflineTeacher:
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def teacher():
    return build(toy_cfg().model).eval()


def clip(num_frames=4, hw=(64, 64), **kwargs):
    return make_video(num_frames=num_frames, hw=hw, **kwargs)


def save_idol_checkpoint(cfg, tmp_path) -> str:
    """A (random) trained-IDOL checkpoint as the Runner would save it."""
    torch.manual_seed(1)
    idol = MODELS.build(copy.deepcopy(cfg.model.online))
    idol.init_weights()
    path = str(tmp_path / 'idol.pth')
    torch.save(dict(state_dict=idol.state_dict()), path)
    return path


def test_missing_online_checkpoint_is_a_clear_error(tmp_path):
    cfg = toy_cfg()
    cfg.model.online_checkpoint = str(tmp_path / 'no_idol.pth')
    with pytest.raises(FileNotFoundError, match='no_idol.pth'):
        MODELS.build(cfg.model)


def test_online_checkpoint_loaded_and_kept_by_init_weights(tmp_path):
    cfg = toy_cfg()
    path = save_idol_checkpoint(cfg, tmp_path)
    idol = torch.load(path)['state_dict']
    cfg.model.online_checkpoint = path
    torch.manual_seed(2)
    model = MODELS.build(cfg.model)
    model.init_weights()  # as the Runner does: must not re-initialise IDOL
    for key, value in idol.items():
        assert torch.equal(model.online.state_dict()[key], value), key


def test_training_updates_only_the_aggregator():
    cfg = toy_cfg()
    model = build(cfg.model).train()
    assert not model.online.training and model.aggregator.training
    assert not any(p.requires_grad for p in model.online.parameters())
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = optim.optimizer.param_groups
    in_optim = {id(p) for g in groups for p in g['params']}
    assert in_optim == {id(p) for p in model.aggregator.parameters()}
    online_before = copy.deepcopy(model.online.state_dict())
    agg_before = copy.deepcopy(model.aggregator.state_dict())
    video = clip()
    for _ in range(2):
        data = model.data_preprocessor(copy.deepcopy(video), training=True)
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim.update_params(loss)
    names = [
        'loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice',
        'loss_sim'
    ]
    assert set(losses) == set(names) | {f'd0.{n}' for n in names}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    # IDOL: bit-identical parameters and buffers (BN statistics), no grad
    for key, value in model.online.state_dict().items():
        assert torch.equal(value, online_before[key]), key
    assert all(p.grad is None for p in model.online.parameters())
    # the aggregator trained, every parameter of it got a gradient
    changed = [
        k for k, v in model.aggregator.state_dict().items()
        if not torch.equal(v, agg_before[k])
    ]
    assert len(changed) == len(agg_before)


def test_video_level_matching_one_query_per_tube(teacher):
    """A query whose boxes equal an instance's boxes in every frame where
    it is present is matched to it; the class cost counts too."""
    video = clip(num_frames=3)
    data = teacher.data_preprocessor(video, training=True)
    frames = list(data['data_samples'][0])
    # instance id 1 is absent from frame 1
    frames[1].gt_instances = frames[1].gt_instances[torch.tensor([1])]
    tubes = teacher.clip_targets(frames)
    assert tubes.instances_ids.tolist() == [1, 2]
    assert tubes.present.tolist() == [[True, True], [False, True],
                                      [True, True]]
    assert tubes.rows.tolist() == [[0, 1], [-1, 0], [0, 1]]
    metas = [f.metainfo for f in frames]
    h, w = metas[0]['img_shape']
    norm = torch.tensor([w, h, w, h], dtype=torch.float32)
    from mmdet.structures.bbox import bbox_xyxy_to_cxcywh
    gt_boxes = bbox_xyxy_to_cxcywh(tubes.bboxes / norm)  # (T, M, 4)
    boxes = torch.full((3, 5, 4), 0.5)
    boxes[:, 3] = gt_boxes[:, 0]  # query 3 follows instance id 1
    boxes[:, 1] = gt_boxes[:, 1]  # query 1 follows instance id 2
    cls_logits = torch.full((5, 8), -5.0)
    rows, cols = teacher.match_clip(cls_logits, boxes, tubes, metas)
    assert dict(zip(cols.tolist(), rows.tolist())) == {0: 3, 1: 1}
    valid = torch.ones(5, dtype=torch.bool)
    valid[3] = False  # e.g. a padded token-average slot
    rows, cols = teacher.match_clip(cls_logits, boxes, tubes, metas, valid)
    assert 3 not in rows.tolist()


def test_mask_costs_absent_frame_masks_and_tensor_mode():
    """Optional mask matching costs and VITA-style empty-mask supervision
    on frames where a matched instance is absent."""
    cfg = toy_cfg()
    cfg.model.train_cfg.match_costs = copy.deepcopy(DEFAULT_MATCH_COSTS) + [
        dict(type='DiceCost', pred_act=True, weight=5.0)
    ]
    cfg.model.train_cfg.mask_on_absent_frames = True
    model = build(cfg.model).train()
    assert model.uses_mask_costs
    video = clip(num_frames=3)
    gt = video['data_samples'][0][1].gt_instances
    video['data_samples'][0][1].gt_instances = gt[torch.tensor([1])]
    data = model.data_preprocessor(video, training=True)
    calls = []
    original = model.mask_head.forward_masks

    def spy(mask_feat, queries, refs):
        calls.append(queries.size(0))
        return original(mask_feat, queries, refs)

    model.mask_head.forward_masks = spy
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    # per layer and frame: all 20 queries for the mask cost, then both
    # matched queries (also in frame 1 where one instance is absent)
    assert calls == [20, 20, 20, 2, 2, 2] * 2
    with torch.no_grad():
        out = model(**data, mode='tensor')
    assert out['queries'].shape == (2, 1, 20, 64)
    assert out['cls_scores'].shape == (2, 1, 20, 8)
    assert out['bbox_preds'].shape == (2, 1, 3, 20, 4)
    assert out['embeds'].shape == (1, 20, 64)


def test_forward_clip_api(teacher):
    video = clip(num_frames=4)
    data = teacher.data_preprocessor(video, training=False)
    imgs, frames = data['inputs'][0], list(data['data_samples'][0])
    out = teacher.forward_clip(imgs, frames)
    assert set(out) == {
        'embeds', 'cls_scores', 'bbox_preds', 'queries', 'presence'
    }
    assert out['embeds'].shape == (20, 64)
    assert out['queries'].shape == (20, 64)
    assert out['cls_scores'].shape == (4, 20, 8)
    assert out['bbox_preds'].shape == (4, 20, 4)
    assert all(not v.requires_grad for v in out.values())
    assert ((out['bbox_preds'] > 0) & (out['bbox_preds'] < 1)).all()
    assert torch.allclose(out['embeds'],
                          teacher.head.forward_embed(out['queries']))
    # frames given out of time order: processed in order, returned in the
    # given order
    perm = [2, 0, 3, 1]
    shuffled = teacher.forward_clip(imgs[perm], [frames[i] for i in perm])
    assert torch.allclose(shuffled['embeds'], out['embeds'], atol=1e-5)
    assert torch.allclose(
        shuffled['bbox_preds'], out['bbox_preds'][perm], atol=1e-5)
    # the teacher's mode does not matter
    teacher.train()
    again = teacher.forward_clip(imgs, frames)
    teacher.eval()
    assert torch.allclose(again['embeds'], out['embeds'], atol=1e-6)


def test_token_average_forward_clip_is_per_instance_mean():
    model = build(toy_cfg(TOY_TA_CFG).model).eval()
    video = clip(num_frames=3)
    data = model.data_preprocessor(video, training=False)
    imgs, frames = data['inputs'][0], list(data['data_samples'][0])
    out = model.forward_clip(imgs, frames)
    assert out['embeds'].shape == (2, 64)  # two GT instances
    assert out['cls_scores'].shape == (3, 2, 8)
    assert out['bbox_preds'].shape == (3, 2, 4)
    # by hand: mean of the frame queries matched to each instance
    frame_out = model.frame_pass(imgs, frames)
    targets = model.gt_token_targets(frame_out, [frames])[0]  # (T, Q)
    hidden = frame_out['hidden_states'][-1]  # (T, Q, D)
    for m in range(2):
        assert int((targets == m).sum()) == 3  # one query per frame
        mean = hidden[targets == m].mean(0)
        assert torch.allclose(out['queries'][m], mean, atol=1e-6)
        # the box in each frame refines that frame's matched query's
        # reference, as IDOL's last layer does for that query
        for t in range(3):
            q = int((targets[t] == m).nonzero())
            ref = frame_out['references'][-2][t, q]
            delta = model.head.reg_branches[-1](mean)
            from mmdet.models.layers.transformer import inverse_sigmoid
            box = (delta + inverse_sigmoid(ref)).sigmoid()
            assert torch.allclose(out['bbox_preds'][t, m], box, atol=1e-5)


def predict(model, video):
    data = model.data_preprocessor(video, training=False)
    with torch.no_grad():
        return model(**data, mode='predict')[0]


def test_chunked_inference_equals_unchunked(teacher):
    video = clip(num_frames=12, ori_hw=(80, 72), with_gt=False)
    teacher.test_cfg.update(chunk_size=100, offload_frames=100)
    whole = predict(teacher, copy.deepcopy(video))
    teacher.test_cfg.update(chunk_size=3, offload_frames=5)
    chunked = predict(teacher, copy.deepcopy(video))
    teacher.test_cfg.update(chunk_size=18, offload_frames=36)
    assert len(whole) == len(chunked) == 12
    num = 0
    for a, b in zip(whole, chunked):
        a, b = a.pred_track_instances, b.pred_track_instances
        assert a.instances_id.tolist() == b.instances_id.tolist()
        assert a.labels.tolist() == b.labels.tolist()
        assert torch.allclose(a.scores, b.scores, atol=1e-6)
        assert [r['counts'] for r in a.masks] == [r['counts'] for r in b.masks]
        num += len(a)
        for rle in a.masks:
            assert list(rle['size']) == [80, 72]  # original size
    assert num > 0
    # the YTVIS metric's per-track view: one label / score per id
    ids = {}
    for frame in whole:
        pred = frame.pred_track_instances
        for i, s, lab in zip(pred.instances_id.tolist(), pred.scores.tolist(),
                             pred.labels.tolist()):
            assert ids.setdefault(i, (s, lab)) == (s, lab)
    assert len(ids) <= teacher.test_cfg['max_per_video']


def test_long_video_memory_is_bounded(teacher):
    """300 frames: the online model never sees more than ``chunk_size``
    frames, only queries / references / scores / mask features are kept
    per frame, and at most ``max_per_video`` masks are decoded at once."""
    teacher.test_cfg.update(chunk_size=18, offload_frames=36)
    video = clip(num_frames=300, with_gt=False)
    data = teacher.data_preprocessor(video, training=False)
    frames = list(data['data_samples'][0])
    batches, decoded = [], []
    online_forward = teacher.online.forward_frames
    mask_forward = teacher.mask_head.forward_masks

    def spy_frames(imgs, samples):
        batches.append(imgs.size(0))
        return online_forward(imgs, samples)

    def spy_masks(mask_feat, queries, refs):
        decoded.append(queries.size(0))
        return mask_forward(mask_feat, queries, refs)

    teacher.online.forward_frames = spy_frames
    teacher.mask_head.forward_masks = spy_masks
    try:
        encoded = teacher.encode_video(data['inputs'][0], frames)
        assert max(batches) == 18 and sum(batches) == 300
        assert set(encoded) == {'queries', 'refs', 'scores', 'mask_feats'}
        assert encoded['queries'].shape == (300, 30, 64)
        assert encoded['refs'].shape == (300, 30, 4)
        assert encoded['scores'].shape == (300, 30)
        assert encoded['mask_feats'].shape == (300, 8, 8, 8)
        with torch.no_grad():
            out = teacher(**data, mode='predict')[0]
    finally:
        del teacher.online.forward_frames, teacher.mask_head.forward_masks
    assert len(out) == 300 and len(decoded) == 300
    assert max(decoded) <= teacher.test_cfg['max_per_video']
    assert all(isinstance(f.pred_track_instances.masks, list) for f in out)


def test_token_average_predict_uses_the_online_tracker():
    cfg = toy_cfg(TOY_TA_CFG)
    # random weights score ~0.01: open the tracker's thresholds
    cfg.model.online.test_cfg.select_thr = 0.0
    cfg.model.online.tracker.update(init_score_thr=0.0, addnew_score_thr=0.0)
    model = build(cfg.model).eval()
    out = predict(model, clip(num_frames=5, with_gt=False))
    ids = {
        i
        for f in out
        for i in f.pred_track_instances.instances_id.tolist()
    }
    assert 0 < len(ids) <= cfg.model.test_cfg.max_per_video
    for frame in out:
        for rle in frame.pred_track_instances.masks:
            assert mask_util.area(rle) > 0


def test_toy_config_trains_and_evaluates_with_runner(tiny_toyvis, tmp_path):
    from mmengine.runner import Runner

    from mmookd.utils import set_data_root
    cfg = toy_cfg()
    set_data_root(cfg, tiny_toyvis)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_iters = 1
    cfg.train_cfg.val_interval = 1
    cfg.train_dataloader.batch_size = 1
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.model.test_cfg.max_per_video = 3
    cfg.model.online_checkpoint = save_idol_checkpoint(cfg, tmp_path)
    online_before = torch.load(cfg.model.online_checkpoint)['state_dict']
    runner = Runner.from_cfg(cfg)
    runner.train()  # one iteration on 4-frame clips, then YTVISMetric
    for key, value in runner.model.online.state_dict().items():
        assert torch.equal(value, online_before[key]), key
    scalars = runner.message_hub.log_scalars
    assert 'train/loss_mask' in scalars and 'train/d0.loss_cls' in scalars
    assert 'val/youtube_vis/segm_mAP' in scalars  # evaluated by YTVISMetric
    assert osp.isfile(osp.join(cfg.work_dir, 'iter_1.pth'))


def test_full_size_r50_teacher_config():
    cfg = Config.fromfile(R50_CFG)
    assert cfg.model.online_checkpoint.endswith('iter_12000.pth')
    assert cfg.optim_wrapper.optimizer.lr == 5e-5
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.train_dataloader.dataset.pipeline[0].num_frames == 4
    cfg.model.online_checkpoint = None
    model = build(cfg.model)
    agg = model.aggregator
    assert len(agg.encoder.layers) == 6 and agg.encoder.window_size == 6
    assert len(agg.decoder.layers) == 3 and agg.num_queries == 100
    assert agg.decoder.fq_pos.num_embeddings == 300
    assert model.head.num_classes == 40
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = optim.optimizer.param_groups
    in_optim = {id(p) for g in groups for p in g['params']}
    assert in_optim == {id(p) for p in agg.parameters()}
    # the distiller's call on a tiny 2-frame clip (a full-size training
    # step takes ~30 s on one CPU core; the toy config covers training)
    model.eval()
    data = model.data_preprocessor(
        clip(num_frames=2, hw=(64, 64), num_classes=40), training=False)
    out = model.forward_clip(data['inputs'][0], list(data['data_samples'][0]))
    assert out['embeds'].shape == (100, 256)
    assert out['cls_scores'].shape == (2, 100, 40)
    assert out['bbox_preds'].shape == (2, 100, 4)


def test_association_pairs_by_hand():
    # 2 matched queries (instances 1 and 0), 3 frames, 4 frame queries
    log_assoc = torch.randn(2, 3, 4).log_softmax(-1)
    log_assoc[1, 2, 3] = float('-inf')  # a slot the aggregator dropped
    targets = torch.tensor([[-1, 1, 0, -1], [0, -1, -1, -1], [-1, -1, -1, 0]])
    preds, labels = OfflineTeacher.assoc_pairs(log_assoc, targets,
                                               torch.tensor([1, 0]))
    # instance 1: frame 0 slot 1 only; instance 0: frame 0 slot 2, frame 1
    # slot 0 (frame 2's slot 3 was dropped)
    assert labels.tolist() == [1, 2, 0]
    assert torch.equal(preds, log_assoc[[0, 1, 1], [0, 0, 1]])


def test_association_loss_trains_the_association():
    cfg = toy_cfg()
    cfg.model.aggregator.query_readout = True
    cfg.model.aggregator.frame_readout = False
    cfg.model.aggregator.absent_slot = False
    cfg.model.loss_sim = None
    cfg.model.loss_assoc = dict(type='CrossEntropyLoss', loss_weight=0.5)
    model = build(cfg.model).train()
    cfg.optim_wrapper.optimizer.lr = 2e-3  # a few steps on one clip
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    video = clip()
    values = []
    for _ in range(8):
        data = model.data_preprocessor(copy.deepcopy(video), training=True)
        losses = model(**data, mode='loss')
        values.append(float(losses['loss_assoc']))
        assert 'd0.loss_assoc' in losses
        loss, _ = model.parse_losses(losses)
        optim.update_params(loss)
    assert values[0] > 0 and values[-1] < 0.5 * values[0], values
    # a learnt-association loss on token average is a clear error
    cfg.model.aggregator = dict(type='TokenAverageAggregator')
    model = build(cfg.model).train()
    data = model.data_preprocessor(copy.deepcopy(video), training=True)
    with pytest.raises(ValueError, match='frame_assoc_log'):
        model(**data, mode='loss')
