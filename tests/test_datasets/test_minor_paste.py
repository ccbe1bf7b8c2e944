# Copyright (c) mmookd contributors. All rights reserved.
"""MinorPaste / Clip-Paste (OOKD paper Sec. 3.4, eq. 6)."""
import json
import os.path as osp
import textwrap
from collections import Counter

import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmookd.datasets.transforms import MinorPaste
from mmookd.datasets.transforms.minor_paste import (
    minor_paste_probs,
    vis_class_counts,
)
from mmookd.datasets.ytvis import VISDataError


def rect(h, w, y0, y1, x0, x1):
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def tight(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def clip(frames, h=8, w=8, value=0):
    """Per-frame results; ``frames``: per frame a list of (id, label, mask).
    """
    out = dict(
        img=[],
        gt_masks=[],
        gt_bboxes=[],
        gt_bboxes_labels=[],
        gt_instances_ids=[],
        gt_ignore_flags=[],
        img_id=[])
    for f, insts in enumerate(frames):
        masks = np.stack([m for _, _, m in insts]) if insts else np.zeros(
            (0, h, w), np.uint8)
        out['img'].append(np.full((h, w, 3), value, dtype=np.uint8))
        out['gt_masks'].append(BitmapMasks(masks, h, w))
        out['gt_bboxes'].append(
            np.array([tight(m) for _, _, m in insts],
                     dtype=np.float32).reshape(-1, 4))
        out['gt_bboxes_labels'].append(
            np.array([lab for _, lab, _ in insts], dtype=np.int64))
        out['gt_instances_ids'].append(
            np.array([i for i, _, _ in insts], dtype=np.int32))
        out['gt_ignore_flags'].append(np.zeros(len(insts), dtype=bool))
        out['img_id'].append(f)
    return out


def check_consistent(results):
    """Boxes tight to non-empty masks inside the image, ids unique."""
    for f, img in enumerate(results['img']):
        h, w = img.shape[:2]
        masks = results['gt_masks'][f].masks
        boxes = results['gt_bboxes'][f]
        boxes = boxes.numpy() if isinstance(boxes, HorizontalBoxes) else boxes
        n = len(masks)
        assert masks.shape[1:] == (h, w)
        assert len(boxes) == len(results['gt_bboxes_labels'][f]) == n
        assert len(results['gt_instances_ids'][f]) == n
        assert len(results['gt_ignore_flags'][f]) == n
        ids = results['gt_instances_ids'][f].tolist()
        assert len(set(ids)) == n
        for mask, box in zip(masks, boxes):
            assert mask.any()
            assert list(box) == tight(mask)
            assert 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h


# Shares: label 0 most frequent (never pasted), label 3 rarest (p^s = k).
SHARES = {0: 0.5, 1: 0.3, 2: 0.15, 3: 0.05}


def hand_case():
    """Target 8x8 (img 0), 2 frames: id 1 label 0 in rows 0-3 x cols 0-3,
    id 2 label 1 in rows 4-5 x cols 4-5. Source (img 200): id 7 label 3 in
    rows 0-1 (frame 0) and over id 2 (frame 1); id 9 label 0 (the most
    frequent class) in rows 6-7 of both frames."""
    a, b = rect(8, 8, 0, 4, 0, 4), rect(8, 8, 4, 6, 4, 6)
    dst = clip([[(1, 0, a), (2, 1, b)]] * 2)
    top, major = rect(8, 8, 0, 2, 0, 8), rect(8, 8, 6, 8, 0, 8)
    src = clip([[(7, 3, top), (9, 0, major)], [(7, 3, b), (9, 0, major)]],
               value=200)
    return dst, src


def test_hand_checked_two_frame_case():
    dst, src = hand_case()
    dst['mix_results'] = [src]
    # k = 1: the rarest class is pasted surely, the most frequent never.
    out = MinorPaste(class_shares=SHARES, k=1.0)(dst)
    assert 'mix_results' not in out
    check_consistent(out)
    # frame 0: rows 0-1 pasted; id 1 loses them (box recomputed), id 2 kept
    expected_img = np.zeros((8, 8, 3), np.uint8)
    expected_img[0:2] = 200
    np.testing.assert_array_equal(out['img'][0], expected_img)
    assert out['gt_instances_ids'][0].tolist() == [1, 2, 3]
    assert out['gt_instances_ids'][0].dtype == np.int32
    assert out['gt_bboxes_labels'][0].tolist() == [0, 1, 3]
    assert out['gt_bboxes'][0].tolist() == [[0, 2, 4, 4], [4, 4, 6, 6],
                                            [0, 0, 8, 2]]
    np.testing.assert_array_equal(out['gt_masks'][0].masks[0],
                                  rect(8, 8, 2, 4, 0, 4))
    # frame 1: id 2 fully hidden -> dropped; id 1 untouched; same new id 3
    assert out['gt_instances_ids'][1].tolist() == [1, 3]
    assert out['gt_bboxes_labels'][1].tolist() == [0, 3]
    assert out['gt_bboxes'][1].tolist() == [[0, 0, 4, 4], [4, 4, 6, 6]]
    assert out['img'][1][4:6, 4:6].min() == 200
    assert out['img'][1].sum() == 200 * 3 * 4


def test_source_of_other_size_and_shorter_clip():
    """A 4x4, 1-frame source is resized to 8x8 and cycled over 2 frames."""
    dst = clip([[], []])
    src = clip([[(5, 3, rect(4, 4, 0, 2, 0, 2))]], h=4, w=4, value=100)
    dst['mix_results'] = [src]
    out = MinorPaste(class_shares=SHARES, k=1.0)(dst)
    check_consistent(out)
    for f in range(2):
        assert out['gt_bboxes'][f].tolist() == [[0, 0, 4, 4]]
        assert out['gt_instances_ids'][f].tolist() == [0]
        assert out['img'][f][:4, :4].min() == 100
        assert out['img'][f].sum() == 100 * 3 * 16


def test_single_image_results_and_horizontal_boxes():
    dst, src = hand_case()
    dst = {k: v[0] for k, v in dst.items()}
    dst['gt_bboxes'] = HorizontalBoxes(dst['gt_bboxes'])
    src = {k: v[0] for k, v in src.items()}
    dst['mix_results'] = [src]
    out = MinorPaste(class_shares=SHARES, k=1.0)(dst)
    assert isinstance(out['gt_bboxes'], HorizontalBoxes)
    assert out['gt_bboxes'].tensor.tolist() == [[0, 2, 4, 4], [4, 4, 6, 6],
                                                [0, 0, 8, 2]]
    assert isinstance(out['img'], np.ndarray)


def stats_source(labels, frames=1):
    """One tube per label, each in its own column of a 4x8 image."""
    insts = [(10 + i, lab, rect(4, 8, 0, 4, i, i + 1))
             for i, lab in enumerate(labels)]
    return clip([insts] * frames, h=4, w=8, value=50)


def paste_counts(transform, src, draws=2000, frames=1):
    """How often each label was pasted (and frames agreeing per tube)."""
    np.random.seed(0)
    counts = Counter()
    dst0 = clip([[]] * frames, h=4, w=8)
    for _ in range(draws):
        dst = dict(dst0)
        dst['mix_results'] = [src]
        out = transform(dst)
        per_frame = [tuple(labels) for labels in out['gt_bboxes_labels']]
        assert len(set(per_frame)) == 1  # one decision per tube
        counts.update(per_frame[0])
    return {lab: counts[lab] / draws for lab in range(5)}


def test_paste_frequencies_follow_eq6():
    shares = {0: 0.4, 1: 0.3, 2: 0.2, 3: 0.07, 4: 0.03}
    transform = MinorPaste(class_shares=shares)
    expected = minor_paste_probs(shares, 0.7)
    # eq. 6 by hand: 0.7 * (0.4 - p) / (0.4 - 0.03)
    for lab, p in shares.items():
        assert expected[lab] == pytest.approx(0.7 * (0.4 - p) / 0.37)
    assert transform.minor_labels == {3, 4}
    freq = paste_counts(transform, stats_source(range(5), frames=2), frames=2)
    assert freq[0] == 0  # the most frequent class is never pasted
    assert freq[4] == pytest.approx(0.7, abs=0.04)  # the rarest: k
    for lab in (1, 2, 3):
        assert freq[lab] == pytest.approx(expected[lab], abs=0.04)


def test_clip_paste_ignores_class():
    transform = MinorPaste(mode='clip', clip_paste_prob=0.5)
    freq = paste_counts(transform, stats_source([0, 0, 1, 4]), draws=1000)
    assert freq[0] == pytest.approx(0.5 * 2, abs=0.08)  # two label-0 tubes
    assert freq[1] == pytest.approx(0.5, abs=0.05)
    assert freq[4] == pytest.approx(0.5, abs=0.05)


def test_max_paste_and_seeded_reproducibility():
    transform = MinorPaste(mode='clip', clip_paste_prob=1.0, max_paste=2)
    src = stats_source(range(5))
    outs = []
    for _ in range(2):
        np.random.seed(3)
        dst = clip([[]], h=4, w=8)
        dst['mix_results'] = [src]
        outs.append(transform(dst)['gt_bboxes_labels'][0].tolist())
    assert len(outs[0]) == 2 and outs[0] == outs[1]


def test_errors():
    dst, src = hand_case()
    with pytest.raises(KeyError, match='MultiImageMixDataset'):
        MinorPaste(class_shares=SHARES)(dst)
    dst['mix_results'] = [src]
    with pytest.raises(RuntimeError, match='class shares'):
        MinorPaste()(dst)
    with pytest.raises(ValueError, match='mode'):
        MinorPaste(mode='copy')
    missing = '/nonexistent/dir/train_annos.json'
    with pytest.raises(VISDataError, match='train_annos.json'):
        MinorPaste(ann_file=missing)


def write(tmp_path, name, data):
    path = osp.join(str(tmp_path), name)
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def test_shares_from_native_and_cocovid_json(tmp_path):
    poly = [[0, 0, 4, 0, 4, 4, 0, 4]]
    cats = [
        dict(id=5, name='c5'),
        dict(id=2, name='c2'),
        dict(id=9, name='c9')
    ]
    anns = [
        dict(
            id=i + 1, video_id=1, category_id=cat, segmentations=[poly, None])
        for i, cat in enumerate([2, 2, 5, 2])
    ]
    native = dict(
        videos=[
            dict(id=1, width=8, height=8, file_names=['v/0.jpg', 'v/1.jpg'])
        ],
        categories=cats,
        annotations=anns)
    ann_file = write(tmp_path, 'native.json', native)
    # Labels by category id (as YTVISDataset without classes): 2, 5, 9.
    counts, names = vis_class_counts(ann_file)
    assert counts == {0: 3, 1: 1, 2: 0} and names == ('c2', 'c5', 'c9')
    transform = MinorPaste(ann_file=ann_file)
    assert transform.class_shares == {0: 0.75, 1: 0.25, 2: 0.0}
    assert transform.paste_probs == pytest.approx({
        0: 0.,
        1: 0.7 / 1.5,
        2: 0.7
    })
    # With the dataset's class order.
    counts, _ = vis_class_counts(ann_file, classes=('c9', 'c5', 'c2'))
    assert counts == {0: 0, 1: 1, 2: 3}
    with pytest.raises(VISDataError, match='not categories'):
        vis_class_counts(ann_file, classes=('dog', ))

    # CocoVID: one annotation per frame, tubes = (video, instance_id).
    frame_anns = [
        dict(id=1, image_id=1, video_id=1, instance_id=1, category_id=2),
        dict(id=2, image_id=2, video_id=1, instance_id=1, category_id=2),
        dict(id=3, image_id=1, video_id=1, instance_id=2, category_id=5),
        dict(id=4, image_id=3, video_id=2, instance_id=1, category_id=5),
    ]
    cocovid = dict(
        videos=[dict(id=1), dict(id=2)],
        images=[dict(id=i, video_id=1 + (i == 3)) for i in (1, 2, 3)],
        categories=cats,
        annotations=frame_anns)
    counts, _ = vis_class_counts(write(tmp_path, 'cocovid.json', cocovid))
    assert counts == {0: 1, 1: 2, 2: 0}


def mix_dataset(root, paste_cfg):
    from mmdet.registry import DATASETS
    inner_pipeline = [
        dict(type='KeyRefFrameSample', frame_range=10),
        dict(
            type='TransformBroadcaster',
            share_random_params=True,
            transforms=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadTrackAnnotations', with_mask=True),
                dict(type='Resize', scale=(192, 128), keep_ratio=True),
                dict(type='RandomFlip', prob=0.5),
            ])
    ]
    return DATASETS.build(
        dict(
            type='MultiImageMixDataset',
            dataset=dict(
                type='YTVISDataset',
                data_root=root,
                ann_file='annotations/toyvis_train.json',
                data_prefix=dict(img_path='train/JPEGImages'),
                pipeline=inner_pipeline),
            pipeline=[paste_cfg, dict(type='PackTrackInputs')]))


def test_in_mmdet_multi_image_mix_pipeline(tiny_toyvis):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ann_file = osp.join(tiny_toyvis, 'annotations', 'toyvis_train.json')
    dataset = mix_dataset(
        tiny_toyvis, dict(type='MinorPaste', mode='clip', clip_paste_prob=1.))
    np.random.seed(0)
    inner = dataset.dataset
    pasted_any = False
    for idx in range(len(dataset)):
        sample = dataset[idx]
        inputs, tds = sample['inputs'], sample['data_samples']
        assert inputs.shape[0] == 2 and len(tds) == 2
        target_ids = {
            inst['instance_id']
            for img in inner.get_data_info(idx)['images']
            for inst in img['instances']
        }
        for f in range(2):
            gt = tds[f].gt_instances
            h, w = inputs.shape[-2:]
            masks = gt.masks.masks
            assert masks.shape[1:] == (h, w)
            n = len(gt.labels)
            assert len(gt.bboxes) == len(masks) == len(gt.instances_ids) == n
            ids = gt.instances_ids.tolist()
            assert len(set(ids)) == n
            boxes = gt.bboxes
            assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w).all()
            assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= h).all()
            for i, inst_id in enumerate(ids):
                if inst_id > max(target_ids):  # pasted
                    pasted_any = True
                    assert masks[i].any()
                    assert boxes[i].tolist() == tight(masks[i])
                    assert 0 <= int(gt.labels[i]) < 8
    assert pasted_any

    # Minor mode with shares from the annotation file: source clips hold a
    # minor class, and packing works.
    dataset = mix_dataset(tiny_toyvis,
                          dict(type='MinorPaste', ann_file=ann_file))
    sample = dataset[0]
    assert isinstance(sample['inputs'], torch.Tensor)
    paste = dataset.pipeline[0]
    assert paste.class_names == inner.metainfo['classes']
    minor = paste.minor_labels
    for idx in paste._source_inds:
        labels = {
            inst['bbox_label']
            for img in inner.get_data_info(idx)['images']
            for inst in img['instances']
        }
        assert labels & minor
    # Shares from the wrapped dataset itself equal the file's (no tube of
    # the tiny dataset is filtered out).
    from_dataset = MinorPaste()
    from_dataset.get_indexes(inner)
    assert from_dataset.class_shares == pytest.approx(paste.class_shares)


def test_plain_mmdet_config_builds_minor_paste(tmp_path):
    """A plain mmdet config with ``custom_imports=['mmookd']`` builds the
    OOKD components through mmdet's registries (in-process to stay fast;
    ``tests/test_plugin`` checks the import in a fresh interpreter)."""
    from mmdet.registry import MODELS, TASK_UTILS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg_file = tmp_path / 'plain_mmdet_cfg.py'
    cfg_file.write_text(
        textwrap.dedent("""
        _base_ = 'mmdet::_base_/default_runtime.py'
        custom_imports = dict(imports=['mmookd'], allow_failed_imports=False)
        paste = dict(type='MinorPaste', class_shares={0: 0.9, 1: 0.1}, k=1.0)
        kd_loss = dict(type='CosineKDLoss')
        qfa = dict(type='QFAAssigner')
        """))
    cfg = Config.fromfile(str(cfg_file))
    init_default_scope(cfg.default_scope)
    paste = TRANSFORMS.build(cfg.paste)
    assert isinstance(paste, MinorPaste)
    assert type(MODELS.build(cfg.kd_loss)).__name__ == 'CosineKDLoss'
    assert type(TASK_UTILS.build(cfg.qfa)).__name__ == 'QFAAssigner'

    # On a plain single-image mmdet result: the pasted label-1 image hides
    # the label-0 instance completely.
    def image(label):
        return dict(
            img=np.zeros((4, 4, 3), np.uint8),
            gt_masks=BitmapMasks(np.ones((1, 4, 4), np.uint8), 4, 4),
            gt_bboxes=HorizontalBoxes(np.array([[0, 0, 4, 4]], np.float32)),
            gt_bboxes_labels=np.array([label]),
            gt_ignore_flags=np.array([False]))

    results = image(0)
    results['mix_results'] = [image(1)]
    out = paste(results)
    assert out['gt_bboxes_labels'].tolist() == [1]
    assert out['gt_bboxes'].tensor.tolist() == [[0, 0, 4, 4]]


def test_pasted_instances_carry_their_source():
    """Each pasted tube's new id maps to its (source video, source
    instance), the key of its own knowledge-bank entry; nothing pasted ->
    empty maps."""
    dst, src = hand_case()
    src['video_id'] = [42, 42]
    dst['mix_results'] = [src]
    out = MinorPaste(class_shares=SHARES, k=1.0)(dst)
    assert out['instance_sources'] == [{3: (42, 7)}, {3: (42, 7)}]
    dst, src = hand_case()
    dst['mix_results'] = [src]
    out = MinorPaste(class_shares=SHARES, k=0.0)(dst)  # pastes nothing
    assert out['instance_sources'] == [{}, {}]
