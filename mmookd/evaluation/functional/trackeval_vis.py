# Copyright (c) mmookd contributors. All rights reserved.
"""HOTA / CLEAR / Identity of YouTube-VIS results, computed by TrackEval.

VIS and tracking papers report identity with TrackEval's HOTA, AssA, IDF1
and ID switches, so these numbers are not reimplemented here: TrackEval's
own ``YouTubeVIS`` dataset class and ``Evaluator`` compute them. The only
change is where the data come from: the dataset class reads its two JSON
files from a fixed folder layout, :class:`InMemoryYouTubeVIS` is given the
ground-truth dict and the results list instead (masks normalised to
compressed RLE). Raw data, mask IoUs, class-wise preprocessing, the metrics
and their combination over videos and classes are TrackEval's code, so the
numbers equal TrackEval's ``run_youtube_vis.py`` on the same files.

TrackEval's YouTube-VIS protocol, followed as it is:

* class-wise: each GT category is evaluated on its own, on the GT tracks
  and the predicted tracks (video-level ``category_id``) of that category;
  predictions of a category missing from the GT are never evaluated;
* a detection is a frame where a track has a mask (any non-null RLE);
  similarity = mask IoU;
* nothing is removed in preprocessing: every prediction counts (no score
  threshold), crowd GT tracks count as ordinary GT (no ignore regions);
* per class, videos are combined by TrackEval (sums; AssA weighted by
  TP), then classes by ``cls_comb_det_av`` (``combine='det'``: pooled over
  classes) or ``cls_comb_cls_av`` (``combine='cls'``: mean over all GT
  categories, those without GT or predictions counting 0, as the Evaluator
  does);
* summary: HOTA-family values are the mean over the 19 thresholds
  alpha = 0.05..0.95 (TrackEval's summary), CLEAR and Identity match at
  IoU >= ``iou_thr`` (TrackEval's 0.5). Values are fractions (TrackEval
  prints percentages).

The one option TrackEval's YouTube-VIS does not have: ``score_thr`` > 0
drops predictions scored below it first (0, the default, keeps them all).
"""
import contextlib
import functools
import io
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import mmengine
import numpy as np
from pycocotools import mask as mask_util

from .ytvis_eval import load_ytvis_results, to_compressed_rle

__all__ = [
    'TRACK_METRICS', 'DEFAULT_TRACK_ITEMS', 'InMemoryYouTubeVIS',
    'evaluate_trackeval', 'evaluate_trackeval_subsets', 'track_count_items',
    'track_summary_items'
]

#: TrackEval metric classes that can be asked for.
TRACK_METRICS = ('HOTA', 'CLEAR', 'Identity')
#: Summary items reported by default, per metric.
DEFAULT_TRACK_ITEMS = {
    'HOTA': ('HOTA', 'DetA', 'AssA'),
    'CLEAR': ('MOTA', 'IDSW'),
    'Identity': ('IDF1', ),
}
_INSTALL_HINT = ('`pip install --no-deps trackeval==1.3.0 tabulate` '
                 '(scripts/install.sh does it)')


def _trackeval() -> Any:
    """Import TrackEval lazily: AP alone does not need it."""
    try:
        import trackeval
    except ImportError as err:
        raise ImportError(
            f'TrackEval metrics need the trackeval package: {_INSTALL_HINT}'
        ) from err
    return trackeval


@functools.lru_cache(maxsize=None)
def _dataset_class() -> type:
    """TrackEval's ``YouTubeVIS`` fed from memory (built on first use)."""
    trackeval = _trackeval()
    base_dataset = trackeval.datasets._base_dataset._BaseDataset

    class _InMemoryYouTubeVIS(trackeval.datasets.YouTubeVIS):
        """TrackEval's ``YouTubeVIS`` with its files replaced by dicts.

        ``__init__`` sets what ``YouTubeVIS.__init__`` reads from the GT and
        tracker folders; every other method is TrackEval's.

        Args:
            gt (dict): Prepared GT (:func:`_prepare_gt`).
            results (list[dict]): Prepared results (:func:`_prepare_results`)
                of the GT's videos.
        """

        def __init__(self, gt: dict, results: List[dict]) -> None:
            base_dataset.__init__(self)
            self.config = dict(PRINT_CONFIG=False)
            self.output_fol = self.output_sub_fol = self.tracker_sub_fol = ''
            self.use_super_categories = False
            self.should_classes_combine = True
            self.gt_data = gt
            self.valid_classes = [c['name'] for c in gt['categories']]
            self.class_list = list(self.valid_classes)
            self.class_name_to_class_id = {
                c['name']: c['id']
                for c in gt['categories']
            }
            self.seq_list = [str(v['id']) for v in gt['videos']]
            self.seq_name_to_seq_id = {
                str(v['id']): v['id']
                for v in gt['videos']
            }
            self.seq_lengths = {v['id']: v['length'] for v in gt['videos']}
            self.tracker_list = ['results']
            self.tracker_to_disp = {'results': 'results'}
            self.global_tid_counter = 0
            self.tracker_data = {'results': results}

    return _InMemoryYouTubeVIS


def InMemoryYouTubeVIS(gt: dict, results: List[dict]) -> Any:  # noqa: N802
    """Build TrackEval's ``YouTubeVIS`` on in-memory, prepared data."""
    return _dataset_class()(gt, results)


def _video_length(video: dict, anns: Sequence[dict]) -> int:
    if video.get('length') is not None:
        return int(video['length'])
    if video.get('file_names'):
        return len(video['file_names'])
    return max([len(a['segmentations']) for a in anns] + [0])


def _prepare_gt(gt: dict) -> dict:
    """GT with lengths, annotation ids, compressed RLE masks and the mean
    track area (TrackEval's ``_prepare_gt_annotations``, which only reads
    uncompressed RLE / polygons). The input is not modified."""
    for key in ('videos', 'categories'):
        if key not in gt:
            raise KeyError(f"YouTube-VIS ground truth has no '{key}'.")
    by_video: Dict[Any, List[dict]] = {v['id']: [] for v in gt['videos']}
    for ann in gt.get('annotations', []):
        if ann['video_id'] not in by_video:
            raise ValueError(f'A GT annotation has video_id '
                             f"{ann['video_id']!r}, which is not a video.")
        by_video[ann['video_id']].append(ann)
    videos, annotations = [], []
    ids = [a['id'] for a in gt.get('annotations', []) if 'id' in a]
    next_id = max([int(i) for i in ids] + [0]) + 1
    for video in gt['videos']:
        anns = by_video[video['id']]
        length = _video_length(video, anns)
        h, w = int(video['height']), int(video['width'])
        videos.append(dict(id=video['id'], length=length))
        for ann in anns:
            if len(ann['segmentations']) != length:
                raise ValueError(
                    f"A GT annotation of video {video['id']} has "
                    f"{len(ann['segmentations'])} frames, the video has "
                    f'{length}.')
            segms = [
                to_compressed_rle(s, h, w) if s else None
                for s in ann['segmentations']
            ]
            areas = [float(mask_util.area(s)) for s in segms if s]
            areas = [a for a in areas if a]
            if 'id' in ann:
                ann_id = int(ann['id'])
            else:
                ann_id, next_id = next_id, next_id + 1
            annotations.append(
                dict(
                    id=ann_id,
                    video_id=video['id'],
                    category_id=ann['category_id'],
                    iscrowd=int(ann.get('iscrowd', 0)),
                    segmentations=segms,
                    area=float(np.mean(areas)) if areas else 0))
    return dict(
        videos=videos,
        categories=[
            dict(id=c['id'], name=c['name']) for c in gt['categories']
        ],
        annotations=annotations)


def _prepare_results(results: List[dict], gt: dict, gt_sizes: Dict[Any, tuple],
                     score_thr: float) -> List[dict]:
    """Results of the GT's videos as compressed RLE, lengths checked."""
    lengths = {v['id']: v['length'] for v in gt['videos']}
    out = []
    for res in results:
        vid = res['video_id']
        if vid not in lengths:
            raise ValueError(f'A result has video_id {vid!r}, which is not '
                             'in the ground truth.')
        if res['score'] < score_thr:
            continue
        if len(res['segmentations']) != lengths[vid]:
            raise ValueError(
                f"A result of video {vid} has {len(res['segmentations'])} "
                f'frames, the video has {lengths[vid]}.')
        h, w = gt_sizes[vid]
        segms = [
            to_compressed_rle(s, h, w) if s else None
            for s in res['segmentations']
        ]
        for s in segms:
            if s is not None and list(s['size']) != [h, w]:
                raise ValueError(f'A result mask of video {vid} has size '
                                 f"{s['size']}, the video is {[h, w]}.")
        out.append(
            dict(
                video_id=vid,
                score=float(res['score']),
                category_id=res['category_id'],
                segmentations=segms))
    return out


def _metric_objects(metrics: Sequence[str], iou_thr: float) -> list:
    trackeval = _trackeval()
    objs = []
    for name in metrics:
        if name not in TRACK_METRICS:
            raise KeyError(f'track metric {name!r} is not supported, choose '
                           f'from {TRACK_METRICS}.')
        cls = getattr(trackeval.metrics, name)
        config = None if name == 'HOTA' else dict(
            THRESHOLD=iou_thr, PRINT_CONFIG=False)
        objs.append(cls(config))
    return objs


def track_summary_items(metrics: Sequence[str] = TRACK_METRICS) -> list:
    """Names of the summary items :func:`evaluate_trackeval` returns."""
    objs = _metric_objects(metrics, 0.5) + [_trackeval().metrics.Count()]
    return [f for obj in objs for f in obj.summary_fields]


def track_count_items(metrics: Sequence[str] = TRACK_METRICS) -> set:
    """Summary items that are counts (summed, not averaged, over subsets)."""
    names = set()
    for obj in _metric_objects(metrics, 0.5) + [_trackeval().metrics.Count()]:
        names |= set(getattr(obj, 'integer_fields', ()))
    return names


def _summary(combined: Dict[str, dict], metric_objs: list) -> dict:
    """TrackEval's summary fields (arrays: mean over alpha) as floats."""
    out = {}
    for obj in metric_objs:
        res = combined[obj.get_name()]
        for field in obj.summary_fields:
            out[field] = float(np.mean(res[field]))
    return out


def _load(gt: Union[str, dict], backend_args: Optional[dict]) -> dict:
    if isinstance(gt, str):
        gt = mmengine.load(gt, backend_args=backend_args)
    if not isinstance(gt, dict):
        raise TypeError('YouTube-VIS ground truth must be a dict, got '
                        f'{type(gt)}.')
    return gt


def evaluate_trackeval(gt: Union[str, dict],
                       results: Union[str, Sequence[dict]],
                       metrics: Sequence[str] = TRACK_METRICS,
                       score_thr: float = 0.0,
                       combine: str = 'det',
                       iou_thr: float = 0.5,
                       backend_args: Optional[dict] = None) -> Dict[str, Any]:
    """TrackEval's HOTA / CLEAR / Identity of YouTube-VIS results.

    Every GT video is evaluated (a video without predictions is all
    misses), as by TrackEval.

    Args:
        gt (str | dict): Native YouTube-VIS ground truth or its JSON path.
            Not modified.
        results (str | list[dict]): Results in the official format or their
            JSON path. Not modified.
        metrics (Sequence[str]): Any of :data:`TRACK_METRICS`.
        score_thr (float): Drop predictions scored below it. Defaults to 0
            (TrackEval: keep all).
        combine (str): ``'det'`` (detection-averaged over classes) or
            ``'cls'`` (class-averaged). Defaults to ``'det'``.
        iou_thr (float): CLEAR / Identity match threshold. Defaults to 0.5.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        dict: Every summary field of the metrics (e.g. ``HOTA``, ``DetA``,
        ``AssA``, ``MOTA``, ``IDSW``, ``Frag``, ``IDF1``) and TrackEval's
        counts (``Dets``, ``GT_Dets``, ``IDs``, ``GT_IDs``) as floats.
    """
    if combine not in ('det', 'cls'):
        raise ValueError(f"combine must be 'det' or 'cls', got {combine!r}")
    trackeval = _trackeval()
    gt = _load(gt, backend_args)
    prepared = _prepare_gt(gt)
    sizes = {
        v['id']: (int(v['height']), int(v['width']))
        for v in gt['videos']
    }
    preds = _prepare_results(
        load_ytvis_results(results, backend_args), prepared, sizes, score_thr)
    metric_objs = _metric_objects(metrics, iou_thr)
    evaluator = trackeval.Evaluator(
        dict(
            USE_PARALLEL=False,
            BREAK_ON_ERROR=True,
            RETURN_ON_ERROR=False,
            LOG_ON_ERROR=None,
            PRINT_RESULTS=False,
            PRINT_ONLY_COMBINED=False,
            PRINT_CONFIG=False,
            TIME_PROGRESS=False,
            DISPLAY_LESS_PROGRESS=False,
            OUTPUT_SUMMARY=False,
            OUTPUT_EMPTY_CLASSES=False,
            OUTPUT_DETAILED=False,
            PLOT_CURVES=False))
    dataset = InMemoryYouTubeVIS(prepared, preds)
    with contextlib.redirect_stdout(io.StringIO()):
        output, _ = evaluator.evaluate([dataset], metric_objs)
    res = output[dataset.get_name()]['results']['COMBINED_SEQ']
    combined = res[f'cls_comb_{combine}_av']
    return _summary(combined, metric_objs + [trackeval.metrics.Count()])


def evaluate_trackeval_subsets(gts: Mapping[str, Union[str, dict]],
                               results: Union[str, Sequence[dict]],
                               backend_args: Optional[dict] = None,
                               **kwargs) -> Dict[str, Dict[str, Any]]:
    """:func:`evaluate_trackeval` of each subset (e.g. YouTube-VIS 2022
    ``short`` / ``long``) on the predictions of its own videos.

    Args:
        gts (Mapping[str, str | dict]): Subset name -> GT or its path.
        results (str | list[dict]): Results of all subsets together.
        backend_args (dict, optional): mmengine file backend arguments.
        **kwargs: :func:`evaluate_trackeval` options.

    Returns:
        dict[str, dict]: Subset name -> its summary.
    """
    if not gts:
        raise ValueError('No ground-truth subset given.')
    results = load_ytvis_results(results, backend_args)
    loaded = {name: _load(gt, backend_args) for name, gt in gts.items()}
    ids = {
        name: {v['id']
               for v in gt['videos']}
        for name, gt in loaded.items()
    }
    unknown = {r['video_id'] for r in results} - set().union(*ids.values())
    if unknown:
        raise ValueError(
            f'{len(unknown)} predicted video id(s) are in none of the '
            f'ground-truth subsets: {sorted(unknown, key=str)[:10]}.')
    return {
        name:
        evaluate_trackeval(gt,
                           [r for r in results if r['video_id'] in ids[name]],
                           **kwargs)
        for name, gt in loaded.items()
    }
