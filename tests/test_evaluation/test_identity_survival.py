# Copyright (c) mmookd contributors. All rights reserved.
"""Identity survival / ID switches / fragmentation on hand-built tracks."""
import json
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest

from mmookd.evaluation.functional.identity_survival import (
    gt_identity_stats,
    identity_survival,
)

H, W, T = 24, 40, 8


def box_mask(x0, y0, x1, y1) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def rle(mask: np.ndarray) -> dict:
    r = mask_util.encode(np.asfortranarray(mask))
    return dict(size=list(r['size']), counts=r['counts'].decode())


# Two objects moving right by 2 px per frame; B is absent in frame 5.
def obj_a(t):
    return box_mask(2 + 2 * t, 2, 10 + 2 * t, 10)


def obj_b(t):
    return box_mask(2 + 2 * t, 13, 12 + 2 * t, 22)


def gt_dict() -> dict:
    return dict(
        videos=[dict(id=1, height=H, width=W, length=T)],
        categories=[dict(id=1, name='a'),
                    dict(id=2, name='b')],
        annotations=[
            dict(
                id=10,
                video_id=1,
                category_id=1,
                iscrowd=0,
                segmentations=[rle(obj_a(t)) for t in range(T)]),
            dict(
                id=20,
                video_id=1,
                category_id=2,
                iscrowd=0,
                segmentations=[
                    None if t == 5 else rle(obj_b(t)) for t in range(T)
                ]),
        ])


def track(masks, score=0.9, category_id=1, video_id=1) -> dict:
    return dict(
        video_id=video_id,
        score=score,
        category_id=category_id,
        segmentations=[None if m is None else rle(m) for m in masks])


def test_perfect_tracker():
    results = [
        track([obj_a(t) for t in range(T)]),
        track([None if t == 5 else obj_b(t) for t in range(T)], 0.8, 2),
    ]
    out = identity_survival(gt_dict(), results)
    assert out['num_gt'] == 2 and out['num_gt_frames'] == T + T - 1
    assert out['identity_survival'] == 1.0
    assert out['mean_coverage'] == 1.0
    assert out['detection_coverage'] == 1.0
    assert out['id_switches'] == 0 and out['fragmentations'] == 0
    assert out['num_tracks'] == 2
    # the absent GT frame is not counted against B
    b = [g for g in out['per_gt'] if g['gt_id'] == 20][0]
    assert b['num_visible'] == T - 1 and b['coverage'] == 1.0


def test_tracker_swapping_ids_halfway():
    half = T // 2
    results = [
        track([obj_a(t) if t < half else obj_b(t) for t in range(T)]),
        track([obj_b(t) if t < half else obj_a(t) for t in range(T)]),
    ]
    out = identity_survival(gt_dict(), results)
    per = {g['gt_id']: g for g in out['per_gt']}
    assert per[10]['id_switches'] == 1 and per[20]['id_switches'] == 1
    assert out['id_switches'] == 2 and out['id_switches_per_gt'] == 1.0
    # A: 4 of 8 frames with its majority track; B: 4 of 7 (absent at 5)
    assert per[10]['coverage'] == pytest.approx(4 / 8)
    assert per[20]['coverage'] == pytest.approx(4 / 7)
    assert out['identity_survival'] == 0.0
    assert per[10]['track_ids'] == [0] * half + [1] * half
    # with a low enough survival threshold both survive
    low = identity_survival(gt_dict(), results, coverage_thr=0.5)
    assert low['identity_survival'] == 1.0
    # still a perfect detector
    assert out['detection_coverage'] == 1.0 and out['fragmentations'] == 0


def test_late_respawn_fragmentation_and_gaps():
    """A is lost in frames 3-4 and comes back under a new id (1 switch, 1
    fragmentation); B is tracked except its last frame (no switch)."""
    results = [
        track([obj_a(t) if t < 3 else None for t in range(T)]),
        track([obj_a(t) if t >= 5 else None for t in range(T)]),
        track([None if t in (5, 7) else obj_b(t) for t in range(T)]),
    ]
    out = identity_survival(gt_dict(), results, coverage_thr=0.8)
    per = {g['gt_id']: g for g in out['per_gt']}
    assert per[10]['track_ids'] == [0, 0, 0, None, None, 1, 1, 1]
    assert per[10]['id_switches'] == 1 and per[10]['fragmentations'] == 1
    assert per[10]['coverage'] == pytest.approx(3 / 8)
    assert not per[10]['survived']
    assert per[20]['id_switches'] == 0 and per[20]['fragmentations'] == 0
    assert per[20]['coverage'] == pytest.approx(6 / 7)
    assert per[20]['survived']
    assert out['identity_survival'] == 0.5
    assert out['detection_coverage'] == pytest.approx((6 + 6) / 15)


def test_iou_threshold_and_continuation_over_duplicates():
    """A shifted prediction (IoU < 0.5) does not match; a near-duplicate
    track with a slightly higher IoU does not steal a matched GT."""
    # shifted by 4 px: IoU 4 / 12 = 1/3
    shifted = [box_mask(6 + 2 * t, 2, 14 + 2 * t, 10) for t in range(T)]
    out = identity_survival(gt_dict(), [track(shifted)])
    a = [g for g in out['per_gt'] if g['gt_id'] == 10][0]
    assert a['num_matched'] == 0 and out['num_gt'] == 2
    assert identity_survival(
        gt_dict(), [track(shifted)],
        iou_thr=0.2)['per_gt'][0]['num_matched'] == T
    # track 0 follows A with IoU 0.8 (slightly too wide); from frame 3 a
    # duplicate matches A exactly: A keeps track 0 (CLEAR-MOT), no switch
    wide = [box_mask(2 + 2 * t, 2, 12 + 2 * t, 10) for t in range(T)]
    dup = [obj_a(t) if t >= 3 else None for t in range(T)]
    out = identity_survival(gt_dict(), [track(wide), track(dup, 0.5)])
    a = [g for g in out['per_gt'] if g['gt_id'] == 10][0]
    assert a['id_switches'] == 0 and a['coverage'] == 1.0


def test_multiclass_duplicates_scores_and_paths(tmp_path):
    masks = [obj_a(t) for t in range(T)]
    results = [
        track(masks, 0.9, 1),
        track(masks, 0.3, 2),  # same tube, another class: one track
        track([obj_b(t) if t != 5 else None for t in range(T)], 0.01),
    ]
    out = identity_survival(gt_dict(), results)
    assert out['num_tracks'] == 2 and out['identity_survival'] == 1.0
    # below the score threshold B's only track is ignored
    out = identity_survival(gt_dict(), results, score_thr=0.05)
    assert out['num_tracks'] == 1 and out['identity_survival'] == 0.5
    gt_path, res_path = tmp_path / 'gt.json', tmp_path / 'res.json'
    gt_path.write_text(json.dumps(gt_dict()))
    res_path.write_text(json.dumps(results))
    from_files = identity_survival(str(gt_path), str(res_path))
    assert from_files['identity_survival'] == 1.0


def test_no_predictions_and_empty_gt():
    out = identity_survival(gt_dict(), [])
    assert out['num_gt'] == 2 and out['identity_survival'] == 0.0
    assert out['detection_coverage'] == 0.0
    empty = dict(gt_dict(), annotations=[])
    out = identity_survival(empty, [])
    assert out['num_gt'] == 0 and math.isnan(out['identity_survival'])


def test_bad_results_are_rejected():
    with pytest.raises(ValueError, match='not in the ground truth'):
        identity_survival(gt_dict(), [track([obj_a(0)] * T, video_id=7)])
    with pytest.raises(ValueError, match='frames'):
        identity_survival(gt_dict(), [track([obj_a(0)] * (T - 1))])
    small = dict(size=[H // 2, W], counts=rle(obj_a(0)[:H // 2])['counts'])
    bad = dict(track([obj_a(0)] * T), segmentations=[small] * T)
    with pytest.raises(ValueError, match='size'):
        identity_survival(gt_dict(), [bad])
    # restricting to some videos ignores results of the others
    out = identity_survival(
        gt_dict(), [track([obj_a(t) for t in range(T)])], video_ids=[1])
    assert out['num_gt'] == 2
    with pytest.raises(ValueError, match='video_ids'):
        identity_survival(gt_dict(), [], video_ids=[3])


def test_gt_identity_stats_definitions():
    s = gt_identity_stats([True, True, False, True, True, True],
                          [0, 0, None, None, 1, 0])
    # visible sequence: 0, 0, None, 1, 0 -> switches 0->1->0, one gap
    assert s['track_ids'] == [0, 0, None, 1, 0]
    assert s['id_switches'] == 2 and s['fragmentations'] == 1
    assert s['majority_track'] == 0 and s['majority_frames'] == 3
    assert s['coverage'] == pytest.approx(3 / 5) and not s['survived']
    tie = gt_identity_stats([True] * 4, [1, 1, 0, 0])
    assert tie['majority_track'] == 1  # ties: the track matched first
