# Copyright (c) mmookd contributors. All rights reserved.
"""Identity survival: does a tracker keep one id per object over time?

YouTube-VIS AP scores whole predicted tubes, so a tracker that swaps or
re-spawns ids late in a long video loses little AP. This module measures
identity directly, CLEAR-MOT style, on any model's results in the official
YouTube-VIS format (OOKD's claim is about long-video association, OOKD
paper Sec. 4.2; the tracker: docs/hyperparameters.md §11).

Definitions (class-agnostic, per video):

* **Visible frames** of a GT tube: frames whose GT mask is non-empty
  (crowd annotations are ignored).
* **Per-frame matching**: in each frame, GT masks and predicted-track
  masks are matched one-to-one with mask IoU > ``iou_thr``. As in CLEAR-MOT
  a GT keeps its previous track when that track still overlaps it by more
  than ``iou_thr`` (so two near-duplicate tracks do not cause spurious
  switches); the other GTs and tracks are matched by the Hungarian
  algorithm maximising the IoU.
* **Majority track** of a GT: the track matched to it in the most visible
  frames (ties: the one matched first); **majority coverage** = those
  frames / visible frames.
* **Identity survival** = fraction of GT tubes whose majority coverage is
  ``>= coverage_thr``: one id followed the object for (almost) its whole
  visible life.
* **ID switches** of a GT: how often its matched track id changes between
  consecutive *matched* visible frames (unmatched frames in between are
  skipped; CLEAR-MOT IDSW).
* **Fragmentations** of a GT: how often its matching is interrupted and
  resumes, i.e. (number of runs of consecutive matched visible frames) - 1.
* **Detection coverage** = matched visible frames / visible frames over all
  GTs (what the association could at best keep).

The standard identity numbers (HOTA, AssA, IDF1, class-wise ID switches
and fragmentations) come from TrackEval
(:mod:`mmookd.evaluation.functional.trackeval_vis`,
``YTVISMetric(track_metrics=...)``); this module keeps what TrackEval does
not give: identity survival and majority coverage per GT tube, with its
class-agnostic switches as their per-tube diagnostics.
"""
from collections import Counter, defaultdict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
from pycocotools import mask as mask_util
from scipy.optimize import linear_sum_assignment

from .ytvis_eval import load_ytvis_gt, load_ytvis_results, to_compressed_rle

__all__ = ['identity_survival', 'match_tracks_to_gt', 'gt_identity_stats']


def _rle_or_none(segm: Any, height: int, width: int) -> Optional[dict]:
    """Compressed RLE of a non-empty mask, None for absent/empty masks."""
    if not segm:
        return None
    rle = to_compressed_rle(segm, height, width)
    return rle if mask_util.area(rle) > 0 else None


def match_tracks_to_gt(gt_masks: Sequence[Sequence[Optional[dict]]],
                       track_masks: Sequence[Sequence[Optional[dict]]],
                       iou_thr: float = 0.5) -> List[List[Optional[int]]]:
    """Per-frame one-to-one matching of GT tubes and predicted tracks.

    Args:
        gt_masks: ``[gt][frame]`` compressed RLE or None (not visible).
        track_masks: ``[track][frame]`` compressed RLE or None (absent).
        iou_thr (float): A pair matches when its mask IoU is > this.

    Returns:
        list[list[int | None]]: ``[gt][frame]`` index of the matched track,
        None where the GT is not visible or not matched.
    """
    num_frames = max([len(m)
                      for m in list(gt_masks) + list(track_masks)] + [0])
    matches: List[List[Optional[int]]] = [[None] * len(m) for m in gt_masks]
    last: Dict[int, int] = {}  # gt -> track of its last match
    for f in range(num_frames):
        gts = [g for g, m in enumerate(gt_masks) if f < len(m) and m[f]]
        trs = [t for t, m in enumerate(track_masks) if f < len(m) and m[f]]
        if not gts or not trs:
            continue
        ious = np.asarray(
            mask_util.iou([track_masks[t][f] for t in trs],
                          [gt_masks[g][f] for g in gts], [0] * len(gts)),
            dtype=np.float64).reshape(len(trs), len(gts))
        row = {t: i for i, t in enumerate(trs)}
        # 1. continuations (CLEAR-MOT): best-overlapping first
        cont = sorted(
            ((ious[row[last[g]], j], j, row[last[g]])
             for j, g in enumerate(gts)
             if last.get(g) in row and ious[row[last[g]], j] > iou_thr),
            key=lambda x: -x[0])
        used_rows, used_cols = set(), set()
        for _, j, i in cont:
            if i in used_rows or j in used_cols:
                continue
            used_rows.add(i)
            used_cols.add(j)
            matches[gts[j]][f] = trs[i]
        # 2. Hungarian on the rest, maximising IoU among pairs > iou_thr
        rows = [i for i in range(len(trs)) if i not in used_rows]
        cols = [j for j in range(len(gts)) if j not in used_cols]
        if rows and cols:
            sub = ious[np.ix_(rows, cols)]
            cost = np.where(sub > iou_thr, -sub, 1.0)
            for r, c in zip(*linear_sum_assignment(cost)):
                if sub[r, c] > iou_thr:
                    matches[gts[cols[c]]][f] = trs[rows[r]]
        for j, g in enumerate(gts):
            if matches[g][f] is not None:
                last[g] = matches[g][f]
    return matches


def gt_identity_stats(visible: Sequence[bool],
                      matched: Sequence[Optional[int]],
                      coverage_thr: float = 0.8) -> Dict[str, Any]:
    """Identity statistics of one GT tube (see the module docstring).

    Args:
        visible (Sequence[bool]): Per frame, whether the GT is visible.
        matched (Sequence[int | None]): Per frame, the matched track.
        coverage_thr (float): Survival threshold on majority coverage.

    Returns:
        dict: ``num_visible``, ``num_matched``, ``majority_track``,
        ``majority_frames``, ``coverage``, ``survived``, ``id_switches``,
        ``fragmentations`` and ``track_ids`` (matched track per visible
        frame, None = unmatched).
    """
    seq = [m for v, m in zip(visible, matched) if v]
    hits = [m for m in seq if m is not None]
    majority, majority_frames = None, 0
    if hits:
        # Counter keeps first-insertion order among equal counts
        majority, majority_frames = Counter(hits).most_common(1)[0]
    coverage = majority_frames / len(seq) if seq else 0.0
    switches = sum(a != b for a, b in zip(hits, hits[1:]))
    runs = sum(1 for i, m in enumerate(seq)
               if m is not None and (i == 0 or seq[i - 1] is None))
    return dict(
        num_visible=len(seq),
        num_matched=len(hits),
        majority_track=majority,
        majority_frames=majority_frames,
        coverage=coverage,
        survived=bool(seq) and coverage >= coverage_thr,
        id_switches=int(switches),
        fragmentations=max(runs - 1, 0),
        track_ids=seq)


def _dedupe_tracks(preds: List[dict]) -> List[dict]:
    """One entry per distinct mask tube (multi-class outputs repeat a
    track once per class), the highest-scoring one, by descending score."""
    seen, unique = set(), []
    for pred in sorted(preds, key=lambda p: -p['score']):
        key = tuple(None if rle is None else str(rle['counts'])
                    for rle in pred['rles'])
        if key in seen:
            continue
        seen.add(key)
        unique.append(pred)
    return unique


def identity_survival(gt: Union[str, dict],
                      results: Union[str, Sequence[dict]],
                      iou_thr: float = 0.5,
                      coverage_thr: float = 0.8,
                      score_thr: float = 0.0,
                      video_ids: Optional[Iterable] = None) -> Dict[str, Any]:
    """Identity survival, ID switches and fragmentation of VIS results.

    Args:
        gt (str | dict): Native YouTube-VIS ground truth (or its path).
        results (str | list[dict]): Results in the official format
            (``video_id``, ``score``, ``category_id``, ``segmentations``: one
            RLE or None per frame), or their JSON path. Entries repeating the
            same mask tube (one per class) count as one track.
        iou_thr (float): Per-frame mask IoU (> thr) to match. Defaults to
            0.5.
        coverage_thr (float): A GT tube survives when its majority track
            covers >= this fraction of its visible frames. Defaults to 0.8.
        score_thr (float): Ignore predictions scored below this. Defaults
            to 0.
        video_ids (Iterable, optional): Evaluate only these GT videos.
            Defaults to all.

    Returns:
        dict: ``num_gt`` (tubes with a visible frame), ``num_gt_frames``,
        ``num_tracks``, ``identity_survival``, ``mean_coverage`` (mean
        majority coverage), ``detection_coverage``, ``id_switches``,
        ``id_switches_per_gt``, ``fragmentations``,
        ``fragmentations_per_gt`` (NaN rates when ``num_gt`` is 0), the
        thresholds, and ``per_gt``: one dict per GT tube (``video_id``,
        ``gt_id`` and the :func:`gt_identity_stats` fields).
    """
    gt = load_ytvis_gt(gt)
    results = load_ytvis_results(results)
    videos = {v['id']: v for v in gt['videos']}
    if video_ids is not None:
        wanted = set(video_ids)
        unknown = wanted - set(videos)
        if unknown:
            raise ValueError(f'video_ids {sorted(unknown, key=str)[:10]} are '
                             'not in the ground truth')
        videos = {k: v for k, v in videos.items() if k in wanted}
    anns = defaultdict(list)
    for ann in gt['annotations']:
        if ann['video_id'] in videos and not ann.get('iscrowd', 0):
            anns[ann['video_id']].append(ann)
    preds = defaultdict(list)
    for res in results:
        vid = res['video_id']
        if vid not in videos:
            if video_ids is None:
                raise ValueError(f'A result has video_id {vid!r}, which is '
                                 'not in the ground truth')
            continue
        if res['score'] >= score_thr:
            preds[vid].append(res)

    per_gt, num_tracks = [], 0
    for vid, video in videos.items():
        h, w = int(video['height']), int(video['width'])
        length = video.get('length')
        if length is None:
            length = max([len(a['segmentations']) for a in anns[vid]] +
                         [len(p['segmentations']) for p in preds[vid]] + [0])
        tracks = []
        for res in preds[vid]:
            if len(res['segmentations']) != length:
                raise ValueError(
                    f'A result of video {vid} has '
                    f"{len(res['segmentations'])} frames, the video has "
                    f'{length}')
            rles = [_rle_or_none(s, h, w) for s in res['segmentations']]
            for rle in rles:
                if rle is not None and list(rle['size']) != [h, w]:
                    raise ValueError(f'A result mask of video {vid} has size '
                                     f"{rle['size']}, the video is {[h, w]}")
            tracks.append(dict(score=res['score'], rles=rles))
        tracks = _dedupe_tracks(tracks)
        num_tracks += len(tracks)
        gt_masks = [[_rle_or_none(s, h, w) for s in a['segmentations']]
                    for a in anns[vid]]
        matches = match_tracks_to_gt(gt_masks, [t['rles'] for t in tracks],
                                     iou_thr)
        for ann, masks, matched in zip(anns[vid], gt_masks, matches):
            stats = gt_identity_stats([m is not None for m in masks], matched,
                                      coverage_thr)
            if stats['num_visible'] == 0:
                continue
            per_gt.append(dict(video_id=vid, gt_id=ann.get('id'), **stats))

    num_gt = len(per_gt)
    frames = sum(s['num_visible'] for s in per_gt)
    nan = float('nan')

    def rate(total: float, n: int) -> float:
        return total / n if n else nan

    switches = sum(s['id_switches'] for s in per_gt)
    frags = sum(s['fragmentations'] for s in per_gt)
    return dict(
        num_gt=num_gt,
        num_gt_frames=frames,
        num_tracks=num_tracks,
        identity_survival=rate(sum(s['survived'] for s in per_gt), num_gt),
        mean_coverage=rate(sum(s['coverage'] for s in per_gt), num_gt),
        detection_coverage=rate(sum(s['num_matched'] for s in per_gt), frames),
        id_switches=switches,
        id_switches_per_gt=rate(switches, num_gt),
        fragmentations=frags,
        fragmentations_per_gt=rate(frags, num_gt),
        iou_thr=iou_thr,
        coverage_thr=coverage_thr,
        score_thr=score_thr,
        per_gt=per_gt)
