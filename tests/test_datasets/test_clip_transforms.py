# Copyright (c) mmookd contributors. All rights reserved.
"""The empty-instance filter and the per-sample frame padding.

IDOL crops key and reference frames independently, so a sample's frames can
differ in size and an instance can lose its mask to the crop while its box
survives; these are the two transforms that make that safe, and the model
check that padding a frame next to a larger one does not change what the
network sees of it.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.registry import MODELS, TRANSFORMS
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmookd  # noqa: F401

init_default_scope('mmdet')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')


def frame(h, w, rects, ids, labels, colour=(30, 60, 90), seed=0):
    """One loaded frame (as after LoadImageFromFile + LoadTrackAnnotations)
    with one filled rectangle per instance."""
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 60, (h, w, 3)).astype(np.uint8)
    masks = np.zeros((len(rects), h, w), np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(rects):
        masks[i, y0:y1, x0:x1] = 1
        img[y0:y1, x0:x1] = np.array(colour) + 40 * i
    return dict(
        img=img,
        img_shape=(h, w),
        ori_shape=(h, w),
        gt_bboxes=np.array(rects, np.float32).reshape(-1, 4),
        gt_bboxes_labels=np.array(labels, np.int64),
        gt_masks=BitmapMasks(masks, h, w),
        gt_ignore_flags=np.zeros(len(rects), bool),
        gt_instances_ids=np.array(ids, np.int32))


def clip(*frames):
    """Per-frame lists, as after TransformBroadcaster."""
    keys = frames[0].keys()
    out = {k: [f[k] for f in frames] for k in keys}
    out.update(
        img_id=list(range(len(frames))),
        img_path=[f'f{i}.jpg' for i in range(len(frames))],
        frame_id=list(range(len(frames))),
        video_id=[0] * len(frames),
        video_length=[len(frames)] * len(frames),
        ori_video_length=[len(frames)] * len(frames),
        scale_factor=[(1.0, 1.0)] * len(frames),
        flip=[False] * len(frames),
        flip_direction=[None] * len(frames),
        key_frame_flags=[True] + [False] * (len(frames) - 1))
    return out


def test_crop_that_keeps_box_but_empties_mask_is_filtered():
    """mmdet's RandomCrop(recompute_bbox=True) keeps an instance whose
    (loose) box reaches into the crop while its mask does not: a zero box
    and an empty mask. The filter removes it from that frame only."""
    h, w = 80, 100
    f = frame(h, w, [(5, 5, 30, 30), (50, 40, 90, 75)], [7, 9], [1, 2])
    # instance 7: an L-shaped mask whose box reaches x=60, the mask part
    # right of x=35 lies only in rows 5..8, outside the crop below
    f['gt_masks'].masks[0, 5:9, 30:60] = 1
    f['gt_bboxes'] = np.array([[5, 5, 60, 30], [50, 40, 90, 75]], np.float32)
    crop = TRANSFORMS.build(
        dict(
            type='RandomCrop',
            crop_size=(60, 55),
            allow_negative_crop=True,
            recompute_bbox=True))
    # deterministic crop offset: rows 20..80, columns 40..95
    crop._rand_offset = lambda margin: (20, 40)
    out = crop.transform(dict(f))
    ids = out['gt_instances_ids'].tolist()
    assert 7 in ids, 'mmdet keeps the instance (what this filter fixes)'
    i7 = ids.index(7)
    assert out['gt_masks'].areas[i7] == 0
    filtered = TRANSFORMS.build(dict(type='FilterEmptyInstances'))(out)
    assert filtered['gt_instances_ids'].tolist() == [9]
    assert len(filtered['gt_bboxes']) == len(filtered['gt_masks']) == 1
    assert filtered['gt_bboxes_labels'].tolist() == [2]


def test_filter_is_per_frame_on_clips():
    a = frame(40, 50, [(0, 0, 10, 10), (20, 20, 30, 30)], [1, 2], [0, 1])
    b = frame(40, 50, [(0, 0, 10, 10), (20, 20, 30, 30)], [1, 2], [0, 1])
    b['gt_masks'].masks[1] = 0  # id 2 empty in the reference frame
    a['gt_bboxes'][0, 2] = a['gt_bboxes'][0, 0]  # zero width
    out = TRANSFORMS.build(dict(type='FilterEmptyInstances'))(clip(a, b))
    assert out['gt_instances_ids'][0].tolist() == [2]  # key: id 1 removed
    assert out['gt_instances_ids'][1].tolist() == [1]  # ref: id 2 invalid
    assert [len(m) for m in out['gt_masks']] == [1, 1]
    assert out['gt_bboxes_labels'][0].tolist() == [1]


def test_pad_clip_frames_keeps_each_frame_shape():
    a = frame(48, 64, [(2, 3, 20, 30)], [1], [3])
    b = frame(72, 40, [(5, 5, 25, 60)], [1], [3])
    out = TRANSFORMS.build(dict(type='PadClipFrames', pad_val=(1, 2, 3)))(
        clip(a, b))
    assert [im.shape for im in out['img']] == [(72, 64, 3)] * 2
    assert out['img_shape'] == [(48, 64), (72, 40)]
    np.testing.assert_array_equal(out['img'][0][:48], a['img'])
    assert (out['img'][0][48:] == np.array([1, 2, 3])).all()
    assert (out['img'][1][:, 40:] == np.array([1, 2, 3])).all()
    masks = out['gt_masks']
    assert [(m.height, m.width) for m in masks] == [(72, 64)] * 2
    assert masks[0].areas.tolist() == [
        18 * 27
    ] and masks[1].areas.tolist() == [20 * 55]
    packed = TRANSFORMS.build(dict(type='PackTrackInputs'))(out)
    assert tuple(packed['inputs'].shape) == (2, 3, 72, 64)
    shapes = [s.img_shape for s in packed['data_samples']]
    assert shapes == [(48, 64), (72, 40)]


def test_pad_clip_frames_rejects_single_images():
    with pytest.raises(TypeError, match='per-frame lists'):
        TRANSFORMS.build(dict(type='PadClipFrames'))(
            frame(8, 8, [(0, 0, 4, 4)], [1], [0]))


@pytest.fixture(scope='module')
def tiny_idol():
    torch.manual_seed(0)
    cfg = Config.fromfile(TOY_CFG)
    model = MODELS.build(cfg.model)
    model.init_weights()  # e.g. DETR's level embedding starts uninitialised
    model.eval()  # no dropout: compare the same function of the input
    return model


def pack(*frames):
    pipeline = Compose([
        dict(type='FilterEmptyInstances'),
        dict(type='PadClipFrames', pad_val=(104, 116, 124)),
        dict(type='PackTrackInputs')
    ])
    return pipeline(clip(*frames))


def run(model, sample, pad_size_divisor=32):
    """Key-frame detection / mask losses and per-frame network outputs of
    one packed sample, through the model's own data preprocessor (whose
    batch padding can be enlarged with ``pad_size_divisor``)."""
    preprocessor = model.data_preprocessor
    old = preprocessor.pad_size_divisor
    preprocessor.pad_size_divisor = pad_size_divisor
    try:
        data = preprocessor(pseudo_collate([sample]), True)
    finally:
        preprocessor.pad_size_divisor = old
    with torch.no_grad():
        losses = model.loss(data['inputs'], data['data_samples'])
        outputs = [
            model.forward_frames(data['inputs'][:, t],
                                 [data['data_samples'][0][t]])
            for t in range(data['inputs'].size(1))
        ]
    keep = ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask', 'loss_dice')
    return {k: float(losses[k]) for k in keep}, outputs, data


def assert_same_frame(a, b, atol):
    for key in ('cls_scores', 'bbox_preds'):
        diff = (a[key][-1].sigmoid() - b[key][-1].sigmoid()).abs().max()
        assert diff < atol, (key, float(diff))
    # mask features (stride 8, same canvas): within 10 % of their scale
    diff = (a['mask_feats'] - b['mask_feats']).abs().max()
    assert diff <= 0.1 * a['mask_feats'].abs().mean(), float(diff)


def test_pair_of_different_sizes_equals_each_frame_alone(tiny_idol):
    """A 96x128 key frame next to a 160x144 reference frame: each frame
    gives the same losses and predictions as when it is run alone on a
    canvas of the same size (detectron2 pads every image of a batch to one
    size; this is what IDOL's key/reference padding amounts to).

    Tolerance: 1e-3 on sigmoid scores and boxes, 0.5 % on the losses. The
    only difference left is the pad value: the pixel mean before
    normalisation (~0.008 after it, uint8 rounding) vs. the preprocessor's
    exact 0. The reference frame, whose canvas is the same either way, is
    equal to 1e-5. A frame read with the wrong ``img_shape`` (the padded
    size) gets clearly different losses (checked).

    Not hidden by padding, in the official code neither: the neck's
    GroupNorm takes statistics over the padded map and border convolutions
    see the padding, so the same frame on a smaller canvas gives somewhat
    different features (random tiny model: box predictions within 0.004).
    """
    key = frame(
        96, 128, [(10, 12, 60, 70), (70, 20, 120, 90)], [1, 2], [2, 5], seed=1)
    ref = frame(
        160,
        144, [(14, 16, 64, 74), (80, 30, 130, 100)], [1, 2], [2, 5],
        seed=2)
    model = tiny_idol
    pair_losses, (pair_key, pair_ref), data = run(model, pack(key, ref))
    assert tuple(data['inputs'].shape[-2:]) == (160, 160)  # divisor 32
    shapes = [s.img_shape for s in data['data_samples'][0]]
    assert shapes == [(96, 128), (160, 144)]
    # the key frame alone, on the pair's 160x160 canvas
    alone_losses, (alone_key, _), _ = run(
        model, pack(key, dict(key)), pad_size_divisor=160)
    for name in alone_losses:
        assert pair_losses[name] == pytest.approx(
            alone_losses[name], rel=5e-3), name
    assert_same_frame(alone_key, pair_key, atol=1e-3)
    # the reference frame alone (same 160x160 canvas by the divisor)
    _, (alone_ref, _), _ = run(model, pack(ref, dict(ref)))
    assert_same_frame(alone_ref, pair_ref, atol=1e-5)

    # the key frame on its own 96x128 canvas: close, not equal (above)
    _, (small_key, _), _ = run(model, pack(key, dict(key)))
    boxes_diff = (small_key['bbox_preds'][-1] -
                  pair_key['bbox_preds'][-1]).abs().max()
    assert boxes_diff < 2e-2

    # the padded key frame read with the wrong img_shape (the padded size)
    # gives other losses: box targets are normalised by img_shape
    wrong = pack(key, ref)
    wrong['data_samples'][0].set_metainfo(dict(img_shape=(160, 144)))
    wrong_losses, _, _ = run(model, wrong)
    assert abs(wrong_losses['loss_bbox'] - pair_losses['loss_bbox']) > 0.05
