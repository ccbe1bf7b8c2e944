# Copyright (c) mmookd contributors. All rights reserved.
"""Hand-computed checks of the YouTube-VIS evaluation.

Toy data (8x8 frames, categories 1 'person' and 2 'car')::

    video 1 (3 frames)  A  cat 1  frames 0-2  rows 0:4, cols 0:4 (16 px)
                        B  cat 2  frame 0 absent, frames 1-2 rows 4:8,
                                  cols 4:8 (16 px)
    video 2 (4 frames)  C  cat 1  frames 0-1 rows 0:4, cols 0:4 (16 px),
                                  frames 2-3 rows 0:2, cols 0:4 (8 px)

How AP is computed (COCO 101-point rule, used by the official code): per
category the detections of all videos are sorted by score; walking down the
list gives cumulative TP/FP, recall rc = TP / #GT and precision
pr = TP / (TP + FP); pr is made non-increasing from the right
(pr[i] = max(pr[i:])); for each of the 101 recall thresholds
r = 0, 0.01, ..., 1 the precision at the first rank with rc >= r is taken
(0 if recall never reaches r); AP is the mean of the 101 values, averaged
over the 10 IoU thresholds 0.50:0.05:0.95 and then over the categories.
A detection matches a GT when their IoU >= the threshold; the video IoU is
sum over frames of intersections / sum over frames of unions (a frame where
only one of them is present adds its area to the union).
"""
import copy
import json
import logging
import os.path as osp
import random
import zipfile

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import ytviseval as mmdet_ytviseval
from mmdet.evaluation.functional.ytvis import YTVIS
from mmdet.evaluation.functional.ytviseval import YTVISeval
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData
from pycocotools import mask as mask_util

from mmookd.evaluation import YTVISMetric
from mmookd.evaluation.functional import (
    NumpySafeYTVISeval,
    evaluate_ytvis,
    evaluate_ytvis_subsets,
)
from mmookd.utils import load_tool

H = W = 8
CLASSES = ('person', 'car')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def box(r0, r1, c0, c1, h=H, w=W):
    mask = np.zeros((h, w), dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def rle(mask):
    """Compressed RLE with str counts (the results format)."""
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=list(r['size']), counts=r['counts'].decode())


def uncompressed_rle(mask):
    """Uncompressed RLE (the format of the official GT files)."""
    flat = mask.flatten(order='F').astype(np.uint8)
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return dict(size=list(mask.shape), counts=counts)


A = [box(0, 4, 0, 4)] * 3
B = [None, box(4, 8, 4, 8), box(4, 8, 4, 8)]
C = [box(0, 4, 0, 4)] * 2 + [box(0, 2, 0, 4)] * 2
# GT instances: (ann id, video id, category id, masks)
GT_INSTANCES = [(1, 1, 1, A), (2, 1, 2, B), (3, 2, 1, C)]


def make_gt(instances=GT_INSTANCES, videos=((1, 3), (2, 4)), size=(H, W)):
    annotations = []
    for ann_id, vid, cat, masks in instances:
        annotations.append(
            dict(
                id=ann_id,
                video_id=vid,
                category_id=cat,
                iscrowd=0,
                segmentations=[
                    uncompressed_rle(m) if m is not None else None
                    for m in masks
                ],
                bboxes=[
                    list(mask_util.toBbox(rle(m))) if m is not None else None
                    for m in masks
                ],
                areas=[int(m.sum()) if m is not None else None
                       for m in masks]))
    return dict(
        videos=[
            dict(
                id=vid,
                height=size[0],
                width=size[1],
                length=n,
                file_names=[f'{vid}/{i}.jpg' for i in range(n)])
            for vid, n in videos
        ],
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)],
        annotations=annotations)


def pred(video_id, category_id, score, masks):
    return dict(
        video_id=video_id,
        category_id=category_id,
        score=score,
        segmentations=[rle(m) if m is not None else None for m in masks])


def perfect_preds():
    return [
        pred(1, 1, 0.95, A),
        pred(1, 2, 0.9, B),
        pred(2, 1, 0.85, C),
    ]


# FP in video 2 on rows 4:8, cols 0:4: IoU 0 with C, score above C's.
FP_MASKS = [box(4, 8, 0, 4)] * 4
# identity switch on C: P1 covers frames 0-1 (frame 1 only rows 0:3, 12 px),
# P2 covers frames 2-3 exactly.
P1 = [C[0], box(0, 3, 0, 4), None, None]
P2 = [None, None, C[2], C[3]]


@pytest.fixture
def log_records():
    """Records of the current MMLogger (warnings go there)."""
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def warnings_text(records):
    return '\n'.join(r.getMessage() for r in records
                     if r.levelno >= logging.WARNING)


def approx(value):
    return pytest.approx(value, abs=1e-9)


# ---------------------------------------------------------------------------
# functional API
# ---------------------------------------------------------------------------


def test_perfect_tracks():
    gt, preds = make_gt(), perfect_preds()
    gt_before, preds_before = copy.deepcopy(gt), copy.deepcopy(preds)
    stats = evaluate_ytvis(gt, preds)
    assert len(stats) == 12
    for key in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'AR@1', 'AR@10', 'AR@100',
                'AR_s@100'):
        assert stats[key] == approx(1.0), key
    # all objects are small (< 128^2 px): no medium/large GT -> -1
    for key in ('mAP_m', 'mAP_l', 'AR_m@100', 'AR_l@100'):
        assert stats[key] == -1, key
    # the official code mutates its inputs; ours works on copies
    assert gt == gt_before and preds == preds_before


def test_missed_instance(log_records):
    # C (video 2) is not predicted at all.
    # cat 1: GT {A, C}; dets [A 0.95 TP] -> rc [.5], pr [1]
    #   r in 0..0.50 (51 thresholds) -> 1; r > .5 unreachable -> 0
    #   AP = 51/101 at every IoU threshold.
    # cat 2: AP 1.  mAP = (51/101 + 1) / 2 = 76/101.
    # recall: cat 1 = .5, cat 2 = 1 -> AR = .75.
    preds = perfect_preds()[:2]
    stats = evaluate_ytvis(make_gt(), preds)
    assert stats['mAP'] == approx(76 / 101)
    assert stats['mAP_50'] == approx(76 / 101)
    assert stats['AR@1'] == approx(0.75)
    assert stats['AR@10'] == approx(0.75)
    # video 2 has no prediction at all: it still counts, with a warning
    assert 'cover 1 of the 2 videos' in warnings_text(log_records)


def test_false_positive_with_higher_score():
    # cat 1 ranking: A 0.95 TP, FP 0.92 (video 2, IoU 0), C 0.85 TP.
    #   TP cum [1, 1, 2], FP cum [0, 1, 1]
    #   rc [.5, .5, 1], pr [1, .5, 2/3] -> non-increasing [1, 2/3, 2/3]
    #   r in 0..0.50 (51 thresholds): first rc >= r is rank 0 -> 1
    #   r in 0.51..1 (50 thresholds): rank 2 -> 2/3
    #   AP = (51 + 50 * 2/3) / 101 = 253/303 at every IoU threshold
    # cat 2: AP 1.  mAP = (253/303 + 1) / 2 = 278/303
    # AR@1: video 2 keeps only its best det (the FP) -> cat 1 recall .5,
    # AR@1 = (.5 + 1) / 2 = .75; AR@10 = 1.
    preds = perfect_preds() + [pred(2, 1, 0.92, FP_MASKS)]
    stats = evaluate_ytvis(make_gt(), preds)
    assert stats['mAP'] == approx(278 / 303)
    assert stats['mAP_50'] == approx(278 / 303)
    assert stats['AR@1'] == approx(0.75)
    assert stats['AR@10'] == approx(1.0)


def switch_preds():
    return [
        pred(1, 1, 0.95, A),
        pred(1, 2, 0.9, B),
        pred(2, 1, 0.8, P1),
        pred(2, 1, 0.7, P2),
    ]


def test_identity_switch_iou_and_ap():
    # Spatio-temporal IoU with C (frames 0..3, C areas 16, 16, 8, 8):
    #   P1: I = 16 + 12 + 0 + 0 = 28, U = 16 + 16 + 8 + 8 = 48 -> 7/12
    #   P2: I = 0 + 0 + 8 + 8 = 16,   U = 16 + 16 + 8 + 8 = 48 -> 1/3
    gt_api = YTVIS(make_gt())
    evaluator = NumpySafeYTVISeval(gt_api, gt_api.loadRes(switch_preds()))
    evaluator.evaluate()
    np.testing.assert_allclose(evaluator.ious[(2, 1)], [[28 / 48], [16 / 48]])
    # cat 1, GT {A, C}, ranking A 0.95, P1 0.8, P2 0.7:
    #   t in {.50, .55} (7/12 = .583 >= t): A TP, P1 TP, P2 FP (C taken)
    #     rc [.5, 1, 1], pr [1, 1, 2/3] -> [1, 1, 2/3] -> AP = 1
    #   t in {.60, ..., .95} (8 thresholds): A TP, P1 FP, P2 FP
    #     rc [.5, .5, .5] -> r <= .5: 1 (51 thr.), r > .5: 0 -> 51/101
    #   AP(cat 1) = (2 * 1 + 8 * 51/101) / 10 = 61/101
    # cat 2: 1 -> mAP = (61/101 + 1) / 2 = 81/101
    # AP50 = (1 + 1)/2 = 1;  AP75 = (51/101 + 1) / 2 = 76/101
    # recall cat 1: 1 at 2 thresholds, .5 at 8 -> .6; AR = (.6 + 1)/2 = .8
    stats = evaluate_ytvis(make_gt(), switch_preds())
    assert stats['mAP'] == approx(81 / 101)
    assert stats['mAP_50'] == approx(1.0)
    assert stats['mAP_75'] == approx(76 / 101)
    assert stats['AR@1'] == approx(0.8)
    assert stats['AR@10'] == approx(0.8)


def test_wrong_class():
    # B predicted as 'person' (cat 1) with score 0.9:
    # cat 1 ranking: A 0.95 TP, B-as-person 0.9 FP (IoU 0 with A),
    #   C 0.85 TP -> same as the FP case: 253/303
    # cat 2: GT B without a detection -> AP 0
    # mAP = 253/303 / 2 = 253/606; AR@10 = (1 + 0) / 2 = .5
    preds = perfect_preds()
    preds[1]['category_id'] = 1
    stats = evaluate_ytvis(make_gt(), preds)
    assert stats['mAP'] == approx(253 / 606)
    assert stats['AR@10'] == approx(0.5)


def test_empty_results_and_file_inputs(tmp_path):
    gt_file = str(tmp_path / 'gt.json')
    res_file = str(tmp_path / 'res.json')
    with open(gt_file, 'w') as f:
        json.dump(make_gt(), f)
    with open(res_file, 'w') as f:
        json.dump(perfect_preds(), f)
    assert evaluate_ytvis(gt_file, res_file)['mAP'] == approx(1.0)
    stats = evaluate_ytvis(gt_file, [])
    assert stats['mAP'] == 0 and stats['AR@10'] == 0


def test_invalid_results_are_rejected(tmp_path):
    gt_file = str(tmp_path / 'gt_valid.json')
    with open(gt_file, 'w') as f:
        json.dump(make_gt(), f)
    with pytest.raises(ValueError, match='gt_valid.json'):
        evaluate_ytvis(gt_file, [pred(99, 1, 0.5, A)])
    # a 2-frame prediction for a 3-frame video would silently drop frames
    with pytest.raises(ValueError, match='has 2 frames'):
        evaluate_ytvis(gt_file, [pred(1, 1, 0.5, A[:2])])
    with pytest.raises(ValueError, match='original video resolution'):
        evaluate_ytvis(gt_file,
                       [pred(1, 1, 0.5, [box(0, 4, 0, 4, 16, 16)] * 3)])


def test_numpy_fix_is_needed_and_scoped():
    gt_api = YTVIS(make_gt())
    bare = YTVISeval(gt_api, gt_api.loadRes(switch_preds()))
    bare.evaluate()
    if tuple(int(v) for v in np.__version__.split('.')[:2]) >= (1, 24):
        # mmdet's accumulate uses np.float, removed in numpy 1.24
        with pytest.raises(AttributeError, match='float'):
            bare.accumulate()
    gt_api = YTVIS(make_gt())
    ours = NumpySafeYTVISeval(gt_api, gt_api.loadRes(switch_preds()))
    ours.evaluate()
    ours.accumulate()
    ours.summarize()
    assert ours.stats[0] == approx(81 / 101)
    # nothing was patched globally
    assert mmdet_ytviseval.np is np
    assert 'float' not in vars(np)


# ---------------------------------------------------------------------------
# YTVISMetric through mmengine's Evaluator with real data samples
# ---------------------------------------------------------------------------


def make_video(video_id,
               length,
               tracks,
               instances=None,
               rle_masks=False,
               shape=(H, W)):
    """A TrackDataSample with ``pred_track_instances`` in every frame.

    Args:
        tracks: ``{track id: {frame: (mask, score, label)}}``.
        instances: per frame list of GT instance dicts (metainfo).
    """
    frames = []
    for f in range(length):
        entries = [(tid, *per_frame[f]) for tid, per_frame in tracks.items()
                   if f in per_frame]
        inst = InstanceData()
        inst.instances_id = torch.tensor([e[0] for e in entries],
                                         dtype=torch.long)
        inst.scores = torch.tensor([e[2] for e in entries])
        inst.labels = torch.tensor([e[3] for e in entries], dtype=torch.long)
        inst.bboxes = torch.zeros((len(entries), 4))
        if rle_masks:
            inst.masks = [
                mask_util.encode(np.asfortranarray(e[1].astype(np.uint8)))
                for e in entries
            ]
        else:
            inst.masks = torch.from_numpy(
                np.stack([e[1] for e in entries]) if entries else np.zeros(
                    (0, *shape), dtype=bool))
        meta = dict(
            video_id=video_id,
            img_id=video_id * 100 + f,
            frame_id=f,
            ori_shape=shape,
            ori_video_length=length)
        if instances is not None:
            meta['instances'] = instances[f]
        sample = DetDataSample(metainfo=meta)
        sample.pred_track_instances = inst
        frames.append(sample)
    video = TrackDataSample()
    video.video_data_samples = frames
    return video


def switch_videos():
    """The identity-switch predictions, as per-frame tracks.

    Video 1, track 10 = A with per-frame scores .9/1./.95 (mean .95) and
    labels 0/1/0 (majority 0 -> 'person'); track 11 = B ('car', .9).
    Video 2 reuses track ids (they are per video): 10 = P1 (scores .7/.9,
    mean .8), 11 = P2 (.7); the second video's masks come as RLE dicts.
    """
    v1 = make_video(
        1, 3, {
            10: {
                f: (A[f], s, lb)
                for f, s, lb in zip(range(3), (.9, 1., .95), (0, 1, 0))
            },
            11: {
                f: (B[f], .9, 1)
                for f in (1, 2)
            },
        })
    v2 = make_video(
        2,
        4, {
            10: {
                f: (P1[f], s, 0)
                for f, s in ((0, .7), (1, .9))
            },
            11: {
                f: (P2[f], .7, 0)
                for f in (2, 3)
            },
        },
        rle_masks=True)
    return [v1, v2]


def run_metric(metric, videos, meta=None, frame_by_frame=False):
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = meta or dict(classes=CLASSES)
    for video in videos:
        if frame_by_frame:
            for frame in video.video_data_samples:
                single = TrackDataSample()
                single.video_data_samples = [frame]
                evaluator.process(data_samples=[single])
        else:
            evaluator.process(data_samples=[video])
    return evaluator.evaluate(len(videos))


def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f)
    return str(path)


def test_metric_with_ann_file(tmp_path):
    gt_file = write_json(tmp_path / 'gt.json', make_gt())
    prefix = str(tmp_path / 'out' / 'results')
    metric = YTVISMetric(ann_file=gt_file, outfile_prefix=prefix)
    res = run_metric(metric, switch_videos())
    # same numbers as test_identity_switch_iou_and_ap
    assert res['youtube_vis/segm_mAP'] == approx(81 / 101)
    assert res['youtube_vis/segm_mAP_50'] == approx(1.0)
    assert res['youtube_vis/segm_mAP_75'] == approx(76 / 101)
    assert res['youtube_vis/segm_mAP_s'] == approx(81 / 101)
    assert res['youtube_vis/segm_mAP_m'] == -1
    assert res['youtube_vis/segm_mAP_l'] == -1
    assert res['youtube_vis/segm_AR@1'] == approx(0.8)
    assert res['youtube_vis/segm_AR@10'] == approx(0.8)
    assert 'youtube_vis/segm_AR@100' not in res
    # the saved video-level results: mean score, majority vote, null frames
    with open(prefix + '.json') as f:
        saved = json.load(f)
    assert not osp.exists(prefix + '.submission_file.zip')
    assert [(r['video_id'], r['category_id'])
            for r in saved] == [(1, 1), (1, 2), (2, 1), (2, 1)]
    np.testing.assert_allclose([r['score'] for r in saved], [.95, .9, .8, .7])
    assert saved[1]['segmentations'][0] is None
    assert saved[3]['segmentations'][:2] == [None, None]
    assert saved[2]['segmentations'][0] == rle(P1[0])


def test_metric_items_and_frame_by_frame(tmp_path):
    gt_file = write_json(tmp_path / 'gt.json', make_gt())
    items = ['mAP', 'AR@100', 'AR_s@100', 'AR_m@100', 'AR_l@100']
    metric = YTVISMetric(ann_file=gt_file, metric_items=items, prefix='vis')
    res = run_metric(metric, switch_videos(), frame_by_frame=True)
    assert list(res) == [f'vis/segm_{k}' for k in items]
    assert res['vis/segm_mAP'] == approx(81 / 101)
    assert res['vis/segm_AR@100'] == approx(0.8)
    assert res['vis/segm_AR_m@100'] == -1
    with pytest.raises(KeyError):
        YTVISMetric(metric_items=['mAP_xl'])


def fp_videos():
    """The FP case as per-frame tracks (distinct scores: no ties)."""
    v1 = make_video(
        1, 3, {
            1: {
                f: (A[f], .95, 0)
                for f in range(3)
            },
            2: {
                f: (B[f], .9, 1)
                for f in (1, 2)
            },
        })
    v2 = make_video(
        2, 4, {
            5: {
                f: (FP_MASKS[f], .92, 0)
                for f in range(4)
            },
            6: {
                f: (C[f], .85, 0)
                for f in range(4)
            },
        })
    return [v1, v2]


def test_video_order_does_not_matter(tmp_path):
    gt_file = write_json(tmp_path / 'gt.json', make_gt())
    results, files = [], []
    for i, order in enumerate(([0, 1], [1, 0])):
        prefix = str(tmp_path / f'run{i}')
        videos = fp_videos()
        res = run_metric(
            YTVISMetric(ann_file=gt_file, outfile_prefix=prefix),
            [videos[j] for j in order])
        results.append(res)
        with open(prefix + '.json') as f:
            files.append(json.load(f))
    assert results[0] == results[1]
    assert files[0] == files[1]
    assert results[0]['youtube_vis/segm_mAP'] == approx(278 / 303)


def instances_of(video_masks, formats):
    """Per-frame ``instances`` metainfo as mmdet datasets provide it."""
    per_frame = []
    length = len(video_masks[0][2])
    for f in range(length):
        frame = []
        for (inst_id, label, masks), fmt in zip(video_masks, formats):
            if masks[f] is None:
                continue
            m = masks[f]
            x, y, w, h = mask_util.toBbox(rle(m))
            if fmt == 'polygon':
                segm = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            elif fmt == 'uncompressed':
                segm = uncompressed_rle(m)
            else:
                segm = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
            frame.append(
                dict(
                    bbox=[x, y, x + w, y + h],
                    bbox_label=label,
                    mask=segm,
                    instance_id=inst_id,
                    ignore_flag=0))
        per_frame.append(frame)
    return per_frame


def test_gt_rebuilt_from_data_samples():
    # Same GT as the JSON, given per frame in three mask formats; instance
    # ids repeat across videos (they are only unique per video).
    videos = switch_videos()
    gts = {
        1: instances_of([(0, 0, A), (1, 1, B)], ['uncompressed', 'polygon']),
        2: instances_of([(0, 0, C)], ['compressed']),
    }
    for video in videos:
        vid = video.video_data_samples[0].video_id
        for f, frame in enumerate(video.video_data_samples):
            frame.set_metainfo(dict(instances=gts[vid][f]))
    res = run_metric(YTVISMetric(), videos)
    assert res['youtube_vis/segm_mAP'] == approx(81 / 101)
    assert res['youtube_vis/segm_mAP_75'] == approx(76 / 101)
    assert res['youtube_vis/segm_AR@10'] == approx(0.8)


def test_rebuilt_gt_uses_mask_area():
    # An L-shaped object in a 200x200 video: mask area 399 px (small,
    # < 128^2) but box area 200*200 = 40000 (medium). The official GT files
    # store mask areas, so the object must be 'small'.
    mask = np.zeros((200, 200), dtype=bool)
    mask[0, :] = mask[:, 0] = True
    masks = [mask] * 2
    video = make_video(
        1,
        2, {7: {
            f: (mask, .9, 0)
            for f in range(2)
        }},
        instances=instances_of([(0, 0, masks)], ['compressed']),
        shape=(200, 200))
    res = run_metric(YTVISMetric(), [video])
    assert res['youtube_vis/segm_mAP'] == approx(1.0)
    assert res['youtube_vis/segm_mAP_s'] == approx(1.0)
    assert res['youtube_vis/segm_mAP_m'] == -1


def test_category_ids_from_dataset_meta(tmp_path, log_records):
    gt = make_gt()
    remap = {1: 3, 2: 7}
    for cat in gt['categories']:
        cat['id'] = remap[cat['id']]
    for ann in gt['annotations']:
        ann['category_id'] = remap[ann['category_id']]
    gt_file = write_json(tmp_path / 'gt.json', gt)
    meta = dict(classes=CLASSES, cat_ids=[3, 7])
    res = run_metric(YTVISMetric(ann_file=gt_file), fp_videos(), meta=meta)
    assert res['youtube_vis/segm_mAP'] == approx(278 / 303)
    # without cat_ids, label + 1 gives ids 1/2 that this GT does not know
    res = run_metric(YTVISMetric(ann_file=gt_file), fp_videos())
    assert res['youtube_vis/segm_mAP'] == 0
    assert 'not in the ground truth' in warnings_text(log_records)


def test_unknown_video_and_coverage(tmp_path, log_records):
    gt_file = write_json(tmp_path / 'ytvis_valid.json', make_gt())
    stray = make_video(42, 3, {1: {0: (A[0], .9, 0)}})
    with pytest.raises(ValueError, match='ytvis_valid.json'):
        run_metric(YTVISMetric(ann_file=gt_file), [stray])
    # only video 1 processed: video 2's C counts as a miss (see
    # test_missed_instance: 76/101), with a warning
    res = run_metric(YTVISMetric(ann_file=gt_file), switch_videos()[:1])
    assert res['youtube_vis/segm_mAP'] == approx(76 / 101)
    assert 'cover 1 of the 2 videos' in warnings_text(log_records)


def test_format_only_zip_and_no_overwrite(tmp_path):
    prefix = str(tmp_path / 'results')
    with open(prefix + '.json', 'w') as f:
        f.write('precious')  # an earlier run's results: must survive
    metric = YTVISMetric(format_only=True, outfile_prefix=prefix)
    assert run_metric(metric, switch_videos()) == {}
    with open(prefix + '.json') as f:
        assert f.read() == 'precious'
    assert not osp.exists(prefix + '.submission_file.zip')
    zip_path = prefix + '_1.submission_file.zip'
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.namelist() == ['results.json']
        zipped = json.loads(zf.read('results.json'))
    with open(prefix + '_1.json') as f:
        assert json.load(f) == zipped
    assert len(zipped) == 4
    # the zipped results evaluate to the same numbers as the metric
    assert evaluate_ytvis(make_gt(), zipped)['mAP'] == approx(81 / 101)
    # a second run picks yet another name
    run_metric(
        YTVISMetric(format_only=True, outfile_prefix=prefix), switch_videos())
    assert osp.exists(prefix + '_2.submission_file.zip')
    with pytest.raises(ValueError):
        YTVISMetric(format_only=True)


# YouTube-VIS 2022: long video 3 (4 frames) with one 'car' D.
D = [box(2, 6, 2, 6)] * 4
D_FP = [box(0, 2, 0, 8)] * 4  # IoU 0 with D


def test_ytvis22_short_long(tmp_path):
    short_file = write_json(tmp_path / 'valid.json', make_gt())
    long_gt = make_gt(instances=[(1, 3, 2, D)], videos=((3, 4), ))
    long_file = write_json(tmp_path / 'valid_long.json', long_gt)
    # short: perfect -> AP_S = 1.
    # long, cat 2, one GT: FP 0.9 then TP 0.8 -> rc [0, 1], pr [0, .5]
    #   -> non-increasing [.5, .5]; every r in 0..1 reads .5 -> AP_L = .5
    #   (cat 1 has no GT in the long subset: -1, excluded from the mean)
    # overall = (AP_S + AP_L) / 2 = .75
    long_preds = [pred(3, 2, 0.9, D_FP), pred(3, 2, 0.8, D)]
    stats = evaluate_ytvis_subsets(
        dict(short=short_file, long=long_file),
        perfect_preds() + long_preds)
    assert stats['short']['mAP'] == approx(1.0)
    assert stats['long']['mAP'] == approx(0.5)

    v3 = make_video(
        3, 4, {
            1: {
                f: (D_FP[f], .9, 1)
                for f in range(4)
            },
            2: {
                f: (D[f], .8, 1)
                for f in range(4)
            },
        })
    videos = switch_videos() + [v3]
    random.Random(0).shuffle(videos)
    metric = YTVISMetric(ann_file=dict(short=short_file, long=long_file))
    res = run_metric(metric, videos)
    assert res['youtube_vis/segm_mAP'] == approx((81 / 101 + 0.5) / 2)
    assert res['youtube_vis/segm_mAP_short'] == approx(81 / 101)
    assert res['youtube_vis/segm_mAP_long'] == approx(0.5)
    assert res['youtube_vis/short/segm_mAP_75'] == approx(76 / 101)
    assert res['youtube_vis/long/segm_AR@10'] == approx(1.0)
    assert res['youtube_vis/long/segm_AR@1'] == approx(0.0)
    stray = make_video(42, 3, {1: {0: (A[0], .9, 0)}})
    with pytest.raises(ValueError, match='valid_long.json'):
        run_metric(
            YTVISMetric(ann_file=dict(short=short_file, long=long_file)),
            [stray])


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def load_cli():
    path = osp.join(REPO, 'tools', 'analysis', 'eval_ytvis.py')
    return load_tool(path, 'eval_ytvis')


def test_cli(tmp_path, capsys):
    cli = load_cli()
    gt_file = write_json(tmp_path / 'gt.json', make_gt())
    res_file = write_json(tmp_path / 'res.json', switch_preds())
    stats = cli.main([res_file, '--gt', gt_file])
    assert stats['mAP'] == approx(81 / 101)
    out = capsys.readouterr().out
    assert 'mAP_75' in out and f'{76 / 101:.4f}' in out

    long_file = write_json(
        tmp_path / 'long.json',
        make_gt(instances=[(1, 3, 2, D)], videos=((3, 4), )))
    res_file = write_json(
        tmp_path / 'res22.json',
        perfect_preds() +
        [pred(3, 2, 0.9, D_FP), pred(3, 2, 0.8, D)])
    stats = cli.main([res_file, '--gt-short', gt_file, '--gt-long', long_file])
    assert stats['mAP'] == approx(0.75)
    out = capsys.readouterr().out
    assert 'short' in out and 'long' in out and '0.7500' in out
