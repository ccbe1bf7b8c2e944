# Copyright (c) mmookd contributors. All rights reserved.
"""TrackEval's HOTA / CLEAR / Identity on hand cases, beside AP.

One video of T = 4 frames, 16x16, two objects of category 1 that never
overlap: A (rows 0:4) and B (rows 8:12), both visible in every frame, so
8 GT detections. A prediction with the exact mask has IoU 1, one on the
other object IoU 0.

Definitions used for the hand values (TrackEval):

* CLEAR (IoU >= 0.5): MOTA = (TP - FP - IDSW) / #GT dets; an ID switch is
  a GT matched to another track than at its previous match.
* Identity: the GT and predicted tracks are matched one-to-one for the
  whole video maximising the detections they share (IDTP);
  IDF1 = IDTP / (IDTP + (IDFN + IDFP) / 2).
* HOTA at threshold alpha: DetA = TP / (TP + FN + FP); for each TP pair
  (g, p), A(g, p) = TPA / (TPA + FNA + FPA) with TPA = frames g and p are
  matched, FNA = frames of g not matched to p, FPA = frames of p not
  matched to g; AssA = mean of A over all TPs; HOTA = sqrt(DetA * AssA);
  the summary is the mean over alpha = 0.05, 0.10, ..., 0.95.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from pycocotools import mask as mask_util

from mmookd.evaluation import YTVISMetric
from mmookd.evaluation.functional import identity_survival
from mmookd.evaluation.functional.trackeval_vis import (
    evaluate_trackeval,
    evaluate_trackeval_subsets,
)

trackeval = pytest.importorskip('trackeval')

H = W = 16
T = 4
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def box(r0, r1, c0=0, c1=8):
    m = np.zeros((H, W), bool)
    m[r0:r1, c0:c1] = True
    return m


A = box(0, 4)
B = box(8, 12)


def rle(mask):
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[H, W], counts=r['counts'].decode())


def uncompressed_rle(mask):
    """The official GT files' format (what TrackEval's loader expects)."""
    flat = mask.flatten(order='F').astype(np.uint8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return dict(size=[H, W], counts=counts)


def make_gt(tracks, video_id=1, length=T, cats=(1, )):
    """``tracks``: (ann id, category, masks per frame or None)."""
    return dict(
        videos=[
            dict(
                id=video_id,
                height=H,
                width=W,
                length=length,
                file_names=[f'v{video_id}/{i:05d}.jpg' for i in range(length)])
        ],
        categories=[dict(id=c, name=f'c{c}') for c in cats],
        annotations=[
            dict(
                id=ann_id,
                video_id=video_id,
                category_id=cat,
                iscrowd=0,
                height=H,
                width=W,
                segmentations=[
                    None if m is None else uncompressed_rle(m) for m in masks
                ],
                areas=[None if m is None else int(m.sum()) for m in masks])
            for ann_id, cat, masks in tracks
        ])


def pred(masks, score=0.9, cat=1, video_id=1):
    return dict(
        video_id=video_id,
        score=score,
        category_id=cat,
        segmentations=[None if m is None else rle(m) for m in masks])


GT = [(1, 1, [A] * T), (2, 1, [B] * T)]
PERFECT = [pred([A] * T), pred([B] * T, 0.8)]
# A's id changes after frame 1 (a new track takes over), B is kept.
SWITCH = [
    pred([A, A, None, None]),
    pred([None, None, A, A], 0.7),
    pred([B] * T, 0.8)
]
MISSED = [pred([A] * T)]  # B is never predicted


def test_perfect_tracker():
    out = evaluate_trackeval(make_gt(GT), PERFECT)
    for key in ('HOTA', 'DetA', 'AssA', 'IDF1', 'MOTA'):
        assert out[key] == pytest.approx(1.0), key
    assert out['IDSW'] == 0 and out['GT_Dets'] == 8 and out['Dets'] == 8


def test_one_identity_switch():
    """Tracks: p1 = A on frames 0-1, p2 = A on frames 2-3, p3 = B.

    CLEAR: 8 TP, 0 FP, A switches p1 -> p2 once: IDSW = 1,
    MOTA = (8 - 0 - 1) / 8 = 0.875.
    Identity: A <-> p1 (2 shared, or p2, also 2), B <-> p3 (4):
    IDTP = 6, IDFN = 8 - 6 = 2, IDFP = 8 - 6 = 2,
    IDF1 = 6 / (6 + 2) = 0.75.
    HOTA (every alpha: IoU is 1): DetA = 8 / 8 = 1;
    A(A, p1) = 2 / (2 + 2 + 0) = 0.5 on 2 TPs, A(A, p2) = 0.5 on 2 TPs,
    A(B, p3) = 4 / 4 = 1 on 4 TPs: AssA = (2 * .5 + 2 * .5 + 4) / 8 = 0.75,
    HOTA = sqrt(1 * 0.75).
    """
    out = evaluate_trackeval(make_gt(GT), SWITCH)
    assert out['IDSW'] == 1
    assert out['MOTA'] == pytest.approx(0.875)
    assert out['IDF1'] == pytest.approx(0.75)
    assert out['DetA'] == pytest.approx(1.0)
    assert out['AssA'] == pytest.approx(0.75)
    assert out['HOTA'] == pytest.approx(np.sqrt(0.75))


def test_missed_object():
    """Only A is predicted (exactly): 4 TP, 4 FN, no FP.

    DetA = 4 / 8 = 0.5, AssA = 4 / 4 = 1, HOTA = sqrt(0.5);
    IDTP = 4, IDFN = 4, IDF1 = 4 / (4 + 2) = 2 / 3; MOTA = 4 / 8; IDSW = 0.
    """
    out = evaluate_trackeval(make_gt(GT), MISSED)
    assert out['DetA'] == pytest.approx(0.5)
    assert out['AssA'] == pytest.approx(1.0)
    assert out['HOTA'] == pytest.approx(np.sqrt(0.5))
    assert out['IDF1'] == pytest.approx(2 / 3)
    assert out['MOTA'] == pytest.approx(0.5)
    assert out['IDSW'] == 0


def test_hota_is_the_mean_over_alpha():
    """A's prediction covers cols 0:5 of its cols 0:8: IoU = 20 / 32 =
    0.625 in every frame. TP for alpha <= 0.6 (12 of the 19 thresholds,
    DetA = AssA = HOTA = 1 there), nothing above:
    HOTA = DetA = AssA = 12 / 19. CLEAR / Identity match at 0.5: 1."""
    gt = make_gt([(1, 1, [A] * T)])
    out = evaluate_trackeval(gt, [pred([box(0, 4, 0, 5)] * T)])
    for key in ('HOTA', 'DetA', 'AssA'):
        assert out[key] == pytest.approx(12 / 19), key
    assert out['IDF1'] == 1.0 and out['MOTA'] == 1.0
    assert out['MOTP'] == pytest.approx(0.625)


def test_class_wise_score_thr_and_combine():
    # the right mask with the wrong category: FN in c1, FP in c2
    gt = make_gt([(1, 1, [A] * T)], cats=(1, 2))
    wrong = evaluate_trackeval(gt, [pred([A] * T, cat=2)])
    assert wrong['HOTA'] == 0 and wrong['IDF1'] == 0
    assert wrong['Dets'] == 4 and wrong['GT_Dets'] == 4
    # perfect on c1; c2 has neither GT nor predictions: pooled (det) 1,
    # class mean (cls, TrackEval's Evaluator counts the empty class) 0.5
    right = [pred([A] * T)]
    assert evaluate_trackeval(gt, right)['HOTA'] == pytest.approx(1.0)
    assert evaluate_trackeval(
        gt, right, combine='cls')['HOTA'] == pytest.approx(0.5)
    # a low-score false positive counts (TrackEval keeps every prediction)
    # unless score_thr drops it
    fp = right + [pred([B] * T, score=0.05)]
    assert evaluate_trackeval(gt, fp)['DetA'] == pytest.approx(0.5)
    assert evaluate_trackeval(
        gt, fp, score_thr=0.1)['DetA'] == pytest.approx(1.0)
    with pytest.raises(ValueError, match='not in the ground truth'):
        evaluate_trackeval(gt, [pred([A] * T, video_id=9)])
    with pytest.raises(ValueError, match='3 frames'):
        evaluate_trackeval(gt, [pred([A] * 3)])


def test_agrees_with_identity_survival():
    """The hand-written measure and TrackEval agree where they overlap:
    survival 1 <-> IDSW 0 and IDF1 1; the same ID switches; detection
    coverage = CLEAR recall."""
    gt = make_gt(GT)
    for results, survival, switches in ((PERFECT, 1.0, 0), (SWITCH, 0.5, 1),
                                        (MISSED, 0.5, 0)):
        ours = identity_survival(gt, results)
        theirs = evaluate_trackeval(gt, results)
        assert ours['identity_survival'] == survival
        assert ours['id_switches'] == theirs['IDSW'] == switches
        assert ours['detection_coverage'] == pytest.approx(theirs['CLR_Re'])
    perfect = evaluate_trackeval(gt, PERFECT)
    assert perfect['IDF1'] == 1.0 and perfect['IDSW'] == 0


def random_case(seed):
    """Three videos, two categories, noisy masks, swaps, misses, FPs."""
    rng = np.random.RandomState(seed)
    gt = dict(videos=[], annotations=[], categories=[])
    gt['categories'] = [dict(id=1, name='c1'), dict(id=2, name='c2')]
    results, ann_id = [], 1
    for vid in (1, 2, 3):
        sub = make_gt([], video_id=vid, length=5)
        gt['videos'] += sub['videos']
        objs = []
        for k in range(3):
            r0, c0 = rng.randint(0, 10, size=2)
            masks = [
                None if rng.rand() < 0.2 else box(r0, r0 + 5, c0 + f % 2, c0 +
                                                  5 + f % 2) for f in range(5)
            ]
            cat = int(rng.randint(1, 3))
            objs.append((ann_id, cat, masks))
            ann_id += 1
        gt['annotations'] += make_gt(
            objs, video_id=vid, length=5)['annotations']
        for _, cat, masks in objs:
            noisy = [
                None if m is None or rng.rand() < 0.2 else
                (m ^ (rng.rand(H, W) < 0.02)) for m in masks
            ]
            cut = rng.randint(1, 5)
            results.append(
                pred(noisy[:cut] + [None] * (5 - cut), rng.rand(), cat, vid))
            results.append(
                pred([None] * cut + noisy[cut:], rng.rand(),
                     cat if rng.rand() < 0.8 else 3 - cat, vid))
        results.append(pred([box(12, 16)] * 5, rng.rand(), 1, vid))
    return gt, results


@pytest.mark.parametrize('seed', [0, 1])
def test_equals_trackeval_on_files(tmp_path, seed):
    """The in-memory path gives TrackEval's own numbers: its YouTubeVIS
    dataset class and Evaluator run on the same GT and results files in
    its folder layout."""
    gt, results = random_case(seed)
    gt_dir = tmp_path / 'gt' / 'youtube_vis_val'
    res_dir = tmp_path / 'trackers' / 'youtube_vis_val' / 'model' / 'data'
    gt_dir.mkdir(parents=True)
    res_dir.mkdir(parents=True)
    (gt_dir / 'gt.json').write_text(json.dumps(gt))
    (res_dir / 'results.json').write_text(json.dumps(results))
    dataset = trackeval.datasets.YouTubeVIS(
        dict(
            GT_FOLDER=str(tmp_path / 'gt') + '/',
            TRACKERS_FOLDER=str(tmp_path / 'trackers') + '/',
            SPLIT_TO_EVAL='val',
            PRINT_CONFIG=False))
    evaluator = trackeval.Evaluator(
        dict(
            PRINT_RESULTS=False,
            PRINT_CONFIG=False,
            TIME_PROGRESS=False,
            OUTPUT_SUMMARY=False,
            OUTPUT_DETAILED=False,
            PLOT_CURVES=False,
            LOG_ON_ERROR=None))
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR(dict(PRINT_CONFIG=False)),
        trackeval.metrics.Identity(dict(PRINT_CONFIG=False))
    ]
    output, _ = evaluator.evaluate([dataset], metrics)
    combined = output['YouTubeVIS']['model']['COMBINED_SEQ']
    for combine in ('det', 'cls'):
        ours = evaluate_trackeval(gt, results, combine=combine)
        ref = combined[f'cls_comb_{combine}_av']
        for name, fields in (('HOTA', ('HOTA', 'DetA', 'AssA', 'LocA')),
                             ('CLEAR', ('MOTA', 'IDSW', 'Frag', 'CLR_TP')),
                             ('Identity', ('IDF1', 'IDTP'))):
            for field in fields:
                assert ours[field] == pytest.approx(
                    float(np.mean(ref[name][field]))), (combine, field)
    assert 0 < ours['HOTA'] < 1 and ours['IDSW'] > 0


# ---------------------------------------------------------------------------
# through YTVISMetric
# ---------------------------------------------------------------------------


def make_video(video_id, tracks, instances=None):
    """``tracks``: track id -> {frame: mask}; label 0, score 0.9."""
    frames = []
    for f in range(T):
        ids = [tid for tid, per in tracks.items() if f in per]
        inst = InstanceData()
        inst.instances_id = torch.tensor(ids, dtype=torch.long)
        inst.scores = torch.full((len(ids), ), 0.9)
        inst.labels = torch.zeros(len(ids), dtype=torch.long)
        inst.masks = torch.from_numpy(
            np.stack([tracks[i][f]
                      for i in ids]) if ids else np.zeros((0, H, W), bool))
        meta = dict(
            video_id=video_id,
            img_id=video_id * 100 + f,
            frame_id=f,
            ori_shape=(H, W),
            ori_video_length=T)
        if instances is not None:
            meta['instances'] = instances[f]
        sample = DetDataSample(metainfo=meta)
        sample.pred_track_instances = inst
        frames.append(sample)
    video = TrackDataSample()
    video.video_data_samples = frames
    return video


def run_metric(metric, videos):
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = dict(classes=('c1', ))
    for video in videos:
        evaluator.process(data_samples=[video])
    return evaluator.evaluate(len(videos))


PERFECT_TRACKS = {1: {f: A for f in range(T)}, 2: {f: B for f in range(T)}}
SWITCH_TRACKS = {1: {0: A, 1: A}, 2: {2: A, 3: A}, 3: {f: B for f in range(T)}}


def test_metric_short_long(tmp_path):
    """Short split: video 1 tracked perfectly; long split: video 2 with the
    identity switch of test_one_identity_switch."""
    short = tmp_path / 'short.json'
    long = tmp_path / 'long.json'
    short.write_text(json.dumps(make_gt(GT, video_id=1)))
    long.write_text(json.dumps(make_gt(GT, video_id=2)))
    metric = YTVISMetric(
        ann_file=dict(short=str(short), long=str(long)),
        track_metrics=('HOTA', 'CLEAR', 'Identity'))
    res = run_metric(metric, [
        make_video(2, SWITCH_TRACKS),
        make_video(1, PERFECT_TRACKS),
    ])
    p = 'youtube_vis/'
    assert res[p + 'segm_mAP_short'] == pytest.approx(1.0)
    assert res[p + 'short/HOTA'] == pytest.approx(1.0)
    assert res[p + 'short/AssA'] == pytest.approx(1.0)
    assert res[p + 'short/IDF1'] == pytest.approx(1.0)
    assert res[p + 'short/IDSW'] == 0
    assert res[p + 'long/HOTA'] == pytest.approx(np.sqrt(0.75))
    assert res[p + 'long/AssA'] == pytest.approx(0.75)
    assert res[p + 'long/DetA'] == pytest.approx(1.0)
    assert res[p + 'long/IDF1'] == pytest.approx(0.75)
    assert res[p + 'long/MOTA'] == pytest.approx(0.875)
    # over the subsets: the mean (as AP), the sum for counts
    assert res[p + 'HOTA'] == pytest.approx((1 + np.sqrt(0.75)) / 2)
    assert res[p + 'IDF1'] == pytest.approx((1 + 0.75) / 2)
    assert res[p + 'IDSW'] == 1
    # the functional on the same files gives the same
    stats = evaluate_trackeval_subsets(
        dict(short=str(short), long=str(long)), [
            pred([A, A, None, None], video_id=2),
            pred([None, None, A, A], video_id=2),
            pred([B] * T, video_id=2)
        ] + [pred([A] * T), pred([B] * T)])
    assert stats['long']['IDF1'] == pytest.approx(0.75)


def test_metric_rebuilt_gt_and_options():
    gts = [[
        dict(
            instance_id=i,
            bbox_label=0,
            bbox=[0, 0, 8, 8],
            mask=rle(m),
            ignore_flag=0) for i, m in ((1, A), (2, B))
    ] for _ in range(T)]
    metric = YTVISMetric(track_metrics='Identity', track_items=['IDF1'])
    res = run_metric(metric, [make_video(1, SWITCH_TRACKS, gts)])
    assert res['youtube_vis/IDF1'] == pytest.approx(0.75)
    assert 'youtube_vis/HOTA' not in res
    with pytest.raises(KeyError, match='track metric'):
        YTVISMetric(track_metrics=['MOTS'])
    with pytest.raises(KeyError, match='track item'):
        YTVISMetric(track_metrics=['HOTA'], track_items=['IDF1'])
    with pytest.raises(ValueError, match='track_combine'):
        YTVISMetric(track_metrics=['HOTA'], track_combine='mean')
    # AP only: no TrackEval keys
    res = run_metric(YTVISMetric(), [make_video(1, SWITCH_TRACKS, gts)])
    assert 'youtube_vis/IDF1' not in res


def test_toy_config_reports_trackeval():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'toyvis.py'))
    assert set(
        cfg.val_evaluator.track_metrics) == {'HOTA', 'CLEAR', 'Identity'}
    metric = YTVISMetric(**{
        k: v
        for k, v in cfg.val_evaluator.items() if k != 'type'
    })
    assert {'HOTA', 'AssA', 'IDF1'} <= set(metric.track_items)
