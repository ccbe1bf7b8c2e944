# Copyright (c) mmookd contributors. All rights reserved.
"""The IDOL video model: training on key/reference pairs, online inference.

Synthetic key/reference pairs are built in memory (two coloured objects
moving over a textured background) and fed through the real
``TrackDataPreprocessor``; everything runs on the CPU with random weights.
"""
import copy
import os.path as osp

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmookd.models  # noqa: F401  (registers the models)

init_default_scope('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')
R50_CFG = osp.join(REPO, 'configs/idol/idol_r50_8xb4-12k_youtubevis2021.py')


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """One intra-op thread: on a shared, oversubscribed CPU torch's OpenMP
    threads spin against each other (30x slower steps were measured)."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def make_video(num_frames=2,
               hw=(64, 96),
               ori_hw=None,
               num_classes=8,
               seed=0,
               with_gt=True):
    """One synthetic video as the data pipeline would pack it.

    Two rectangles (ids 1 and 2, classes 2 and 5) move right by 3 px per
    frame on a fixed noise background. ``ori_hw`` simulates a resize: the
    metainfo then says the original video was larger.
    """
    h, w = hw
    ori_hw = ori_hw or hw
    rng = np.random.RandomState(seed)
    background = rng.randint(0, 80, (3, h, w)).astype(np.uint8)
    objects = [(1, 2 % num_classes, (6, 8, 26, 30), (220, 40, 40)),
               (2, 5 % num_classes, (36, 30, 64, 56), (40, 200, 230))]
    frames, samples = [], []
    for t in range(num_frames):
        img = background.copy()
        masks, boxes, labels, ids = [], [], [], []
        for inst_id, label, (x1, y1, x2, y2), color in objects:
            x1, x2 = x1 + 3 * t, x2 + 3 * t
            img[:, y1:y2, x1:x2] = np.array(color, np.uint8)[:, None, None]
            mask = np.zeros((h, w), np.uint8)
            mask[y1:y2, x1:x2] = 1
            masks.append(mask)
            boxes.append([x1, y1, x2, y2])
            labels.append(label)
            ids.append(inst_id)
        frames.append(torch.from_numpy(img))
        sample = DetDataSample()
        scale = (w / ori_hw[1], h / ori_hw[0])
        sample.set_metainfo(
            dict(
                img_id=t,
                frame_id=t,
                video_id=0,
                img_shape=hw,
                ori_shape=ori_hw,
                scale_factor=scale,
                video_length=num_frames,
                ori_video_length=num_frames))
        if with_gt:
            sample.gt_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float32),
                labels=torch.tensor(labels),
                masks=BitmapMasks(np.stack(masks), h, w),
                instances_ids=torch.tensor(ids))
        samples.append(sample)
    track = TrackDataSample()
    track.video_data_samples = samples
    if num_frames == 2:
        track.set_metainfo(dict(key_frames_inds=[0], ref_frames_inds=[1]))
    return dict(inputs=[torch.stack(frames)], data_samples=[track])


def toy_model_cfg():
    return Config.fromfile(TOY_CFG).model


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_loss_keys_and_deep_supervision():
    model = build(toy_model_cfg())
    model.train()
    data = model.data_preprocessor(make_video(), training=True)
    losses = model(**data, mode='loss')
    names = ['loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice']
    expected = set(names) | {f'd0.{n}' for n in names}
    expected |= {'loss_reid', 'loss_reid_aux'}
    assert set(losses) == expected
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name
    # every trainable parameter receives a gradient
    total, _ = model.parse_losses(losses)
    total.backward()
    no_grad = [
        n for n, p in model.named_parameters()
        if p.requires_grad and p.grad is None
    ]
    assert no_grad == []

    cfg = toy_model_cfg()
    cfg.deep_supervision = False
    model = build(cfg).train()
    losses = model(**data, mode='loss')
    assert not any(k.startswith('d0.') for k in losses)


def test_mask_loss_uses_positive_queries_only():
    model = build(toy_model_cfg()).train()
    data = model.data_preprocessor(make_video(), training=True)
    calls = []
    original = model.mask_head.forward_masks

    def spy(mask_feat, query_feats, ref_points):
        calls.append(query_feats.size(0))
        return original(mask_feat, query_feats, ref_points)

    model.mask_head.forward_masks = spy
    model(**data, mode='loss')
    # 2 decoder layers x 1 image; one-to-many, but never all 30 queries
    assert len(calls) == 2
    assert all(2 <= n < 30 for n in calls)


def test_overfits_one_pair():
    """On one fixed key/reference pair the total loss, and its detection +
    mask part alone, fall by more than half within 30 CPU steps."""
    cfg = toy_model_cfg()
    cfg.detector.encoder.layer_cfg.self_attn_cfg.dropout = 0.0
    cfg.detector.encoder.layer_cfg.ffn_cfg.ffn_drop = 0.0
    cfg.detector.decoder.layer_cfg.self_attn_cfg.dropout = 0.0
    cfg.detector.decoder.layer_cfg.cross_attn_cfg.dropout = 0.0
    cfg.detector.decoder.layer_cfg.ffn_cfg.ffn_drop = 0.0
    model = build(cfg).train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0)
    video = make_video(hw=(64, 64))
    totals, det_parts = [], []
    for _ in range(30):
        data = model.data_preprocessor(copy.deepcopy(video), training=True)
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        totals.append(loss.item())
        det_parts.append(
            sum(v.item() for k, v in losses.items() if 'reid' not in k))
    assert min(totals[-5:]) < 0.5 * totals[0], totals
    assert min(det_parts[-5:]) < 0.5 * det_parts[0], det_parts


def output_everything(model):
    """Random weights score ~0.01 (prior): open every threshold."""
    model.test_cfg['select_thr'] = 0.0
    model.tracker_cfg = dict(
        model.tracker_cfg, init_score_thr=0.0, addnew_score_thr=0.0)
    model.assembler_cfg = dict(model.assembler_cfg, apply_cls_thres=0.0)
    return model


@pytest.fixture(scope='module')
def toy_model():
    return build(toy_model_cfg()).eval()


def test_predict_video_rle_at_original_size(toy_model):
    model = output_everything(toy_model)
    video = make_video(
        num_frames=3, hw=(64, 96), ori_hw=(100, 150), with_gt=False)
    data = model.data_preprocessor(video, training=False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    track = results[0]
    assert len(track) == 3
    assert sum(len(f.pred_track_instances) for f in track) > 0
    for frame in track:
        pred = frame.pred_track_instances
        assert isinstance(pred.masks, list)
        n = len(pred.masks)
        assert pred.instances_id.shape == pred.labels.shape == (n, )
        assert pred.scores.shape == (n, ) and pred.bboxes.shape == (n, 4)
        for rle in pred.masks:
            assert list(rle['size']) == [100, 150]
            assert mask_util.decode(rle).shape == (100, 150)


def test_predict_frame_streaming_equals_predict(toy_model):
    model = output_everything(toy_model)
    video = make_video(num_frames=3, with_gt=False)
    data = model.data_preprocessor(video, training=False)
    with torch.no_grad():
        whole = model(**copy.deepcopy(data), mode='predict')[0]
        state = model.init_stream_state()
        online = []
        for t in range(3):
            online.append(
                model.predict_frame(data['inputs'][0, t],
                                    data['data_samples'][0][t], state))
    streamed = state.assembler.to_track_instances(3)
    for t in range(3):
        a, b = whole[t].pred_track_instances, streamed[t]
        assert a.instances_id.tolist() == b.instances_id.tolist()
        assert [r['counts'] for r in a.masks] == \
            [r['counts'] for r in b.masks]
        # per-frame online output: every output id has a mask
        assert len(online[t].masks) == len(online[t].instances_id)
        assert len(online[t]) > 0
    assert state.frame_id == 3


def test_full_size_r50_config_train_and_infer():
    """The full R-50 YouTube-VIS 2021 config: one training iteration and
    one 3-frame inference on CPU, random weights, small input."""
    cfg = Config.fromfile(R50_CFG)
    model = build(cfg.model).train()
    head = model.head
    assert head.num_classes == 40 and model.detector.num_queries == 300
    assert model.detector.decoder.num_layers == 6
    assert model.detector.encoder.num_layers == 6
    assert model.mask_head.num_params == 169
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = model.data_preprocessor(
        make_video(hw=(64, 96), num_classes=40), training=True)
    losses = model(**data, mode='loss')
    assert len([k for k in losses if k.endswith('loss_cls')]) == 6
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    optim.step()

    model.eval()
    video = make_video(
        num_frames=3, hw=(64, 96), ori_hw=(72, 108), with_gt=False)
    data = model.data_preprocessor(video, training=False)
    with torch.no_grad():
        track = model(**data, mode='predict')[0]
    assert all('pred_track_instances' in f for f in track)


def test_tensor_mode_returns_per_frame_outputs(toy_model):
    video = make_video(num_frames=3, with_gt=False)
    data = toy_model.data_preprocessor(video, training=False)
    with torch.no_grad():
        out = toy_model(**data, mode='tensor')
    assert out['cls_scores'].shape == (2, 3, 30, 8)
    assert out['embeds'].shape == (3, 30, 64)
    assert out['mask_feats'].shape == (3, 8, 8, 12)


def test_loss_with_empty_key_frame():
    """A key frame without instances (e.g. after a crop): detection targets
    are all background, no contrastive item, every parameter still used."""
    model = build(toy_model_cfg()).train()
    video = make_video()
    key = video['data_samples'][0][0]
    key.gt_instances = key.gt_instances[torch.zeros(2, dtype=torch.bool)]
    data = model.data_preprocessor(video, training=True)
    losses = model(**data, mode='loss')
    assert losses['loss_reid'].item() == 0
    assert losses['loss_mask'].item() == 0 and losses['loss_bbox'].item() == 0
    assert losses['loss_cls'].item() > 0
    total, _ = model.parse_losses(losses)
    total.backward()
    assert all(p.grad is not None for p in model.parameters()
               if p.requires_grad)
