# Copyright (c) mmookd contributors. All rights reserved.
"""YouTube-VIS evaluation that reuses the official evaluator.

The numbers must match the official CodaLab servers, so the actual matching
and AP computation is *not* reimplemented here: we run mmdet's copy of the
youtubevos/cocoapi evaluator (``YTVIS`` / ``YTVISeval``). This module only

* makes that evaluator run on numpy >= 1.24 (``np.float`` was removed),
  without touching numpy or mmdet for anybody else,
* validates ground truth and results up front, so that a wrong video id, a
  wrong video length or a wrong mask size gives a clear error instead of a
  silently wrong number, and
* returns the 12 summary statistics by name, usable without a runner.
"""
import contextlib
import copy
import io
import logging
import types
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
)

import mmengine
import numpy as np
import torch
from mmdet.evaluation.functional import YTVIS, YTVISeval
from mmengine.logging import print_log
from pycocotools import mask as mask_util

__all__ = [
    'YTVIS_METRIC_NAMES', 'NumpySafeYTVISeval', 'to_compressed_rle',
    'encode_binary_masks', 'load_ytvis_gt', 'load_ytvis_results',
    'evaluate_ytvis', 'evaluate_ytvis_subsets'
]

#: Names of the 12 summary statistics, in the order of ``YTVISeval.stats``.
YTVIS_METRIC_NAMES = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
                      'AR@1', 'AR@10', 'AR@100', 'AR_s@100', 'AR_m@100',
                      'AR_l@100')

GTType = Union[str, dict]
ResultsType = Union[str, Sequence[dict]]
LoggerType = Optional[Union[logging.Logger, str]]


class _NumpyCompat:
    """Stand-in for the ``numpy`` module inside the official evaluator.

    Every attribute is forwarded to numpy, except the aliases that numpy 1.24
    removed and that the official code still uses (``np.float``). The alias
    maps to ``np.float64``, which is exactly what ``np.float`` (== builtin
    ``float``) meant as a dtype, so the results are unchanged.
    """

    float = np.float64

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


def _with_numpy_compat(func: Callable) -> Callable:
    """Return a copy of ``func`` whose global ``np`` is :class:`_NumpyCompat`.

    Why this instead of ``np.float = float``: a global monkeypatch would leak
    a removed alias to every library in the process; and temporarily
    swapping ``ytviseval.np`` would be visible to (and racy with) any other
    user of mmdet's module. Rebinding the globals of *our copy* of the
    function touches neither numpy nor mmdet, is thread-safe, and still runs
    the unmodified official byte code.
    """
    func_globals = dict(func.__globals__)
    func_globals['np'] = _NumpyCompat()
    new_func = types.FunctionType(func.__code__, func_globals, func.__name__,
                                  func.__defaults__, func.__closure__)
    new_func.__kwdefaults__ = copy.copy(func.__kwdefaults__)
    new_func.__doc__ = func.__doc__
    new_func.__qualname__ = func.__qualname__
    return new_func


class NumpySafeYTVISeval(YTVISeval):
    """The official ``YTVISeval`` with an ``accumulate`` that runs on numpy 2.

    mmdet's ``YTVISeval.accumulate`` calls ``astype(dtype=np.float)``, which
    raises ``AttributeError`` on numpy >= 1.24. Only ``accumulate`` uses a
    removed alias; ``evaluate`` and ``summarize`` are inherited unchanged.
    """

    accumulate = _with_numpy_compat(YTVISeval.accumulate)


# ---------------------------------------------------------------------------
# mask helpers
# ---------------------------------------------------------------------------


def to_compressed_rle(segm: Union[dict, list], height: int,
                      width: int) -> dict:
    """Convert a polygon / uncompressed RLE / compressed RLE to compressed RLE.

    The official evaluator only accepts compressed RLE for results and the
    JSON format needs ``counts`` as ``str``, so everything is normalised to
    ``{'size': [h, w], 'counts': str}``.

    Args:
        segm (dict | list): Polygons (list of lists), uncompressed RLE
            (``counts`` is a list) or compressed RLE (``counts`` is str or
            bytes).
        height (int): Image height, needed for polygons.
        width (int): Image width, needed for polygons.

    Returns:
        dict: Compressed RLE with ``counts`` as str.
    """
    if isinstance(segm, (list, tuple)):
        rle = mask_util.merge(mask_util.frPyObjects(list(segm), height, width))
    elif isinstance(segm, dict) and isinstance(segm.get('counts'), list):
        h, w = segm['size']
        rle = mask_util.frPyObjects(segm, h, w)
    elif isinstance(segm, dict) and 'counts' in segm:
        rle = segm
    else:
        raise TypeError('A segmentation must be polygons or an RLE dict, '
                        f'got {type(segm)}.')
    counts = rle['counts']
    if isinstance(counts, bytes):
        counts = counts.decode()
    return dict(size=[int(s) for s in rle['size']], counts=counts)


def encode_binary_masks(masks: Any) -> List[dict]:
    """Encode a stack of binary masks to compressed RLE (``counts`` as str).

    Args:
        masks: ``(N, H, W)`` bool / integer / float tensor or ndarray,
            mmdet ``BitmapMasks``, or a sequence whose items are either
            ``(H, W)`` masks or RLE dicts already (online models RLE-encode
            masks as they are produced). Floating masks are binarised at
            0.5, other dtypes at ``!= 0``.

    Returns:
        list[dict]: One compressed RLE per mask.
    """
    if isinstance(masks, (list, tuple)):
        rles = []
        for mask in masks:
            if isinstance(mask, dict):
                h, w = mask['size']
                rles.append(to_compressed_rle(mask, h, w))
            else:
                rles.extend(encode_binary_masks(_to_numpy(mask)[None]))
        return rles
    if hasattr(masks, 'masks') and not isinstance(masks, np.ndarray):
        masks = masks.masks  # mmdet BitmapMasks
    masks = _to_numpy(masks)
    if masks.ndim != 3:
        raise ValueError('Masks must have shape (N, H, W), got '
                         f'{masks.shape}.')
    if masks.shape[0] == 0:
        return []
    if np.issubdtype(masks.dtype, np.floating):
        masks = masks > 0.5
    else:
        masks = masks != 0
    # pycocotools wants (H, W, N) Fortran-ordered uint8
    rles = mask_util.encode(
        np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [
        dict(size=[int(s) for s in r['size']], counts=r['counts'].decode())
        for r in rles
    ]


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ---------------------------------------------------------------------------
# loading and validation
# ---------------------------------------------------------------------------


def _describe(src: Any, default: str) -> str:
    return f"'{src}'" if isinstance(src, str) else default


def load_ytvis_gt(gt: GTType, backend_args: Optional[dict] = None) -> dict:
    """Load a native YouTube-VIS ground-truth dict and complete it.

    The official evaluator mutates the dataset it is given, so a dict input
    is deep-copied. ``iscrowd`` defaults to 0 and ``areas`` are computed from
    the masks when missing (official annotation files have both, so they are
    left untouched).

    Args:
        gt (dict | str): The ground-truth dict or the path of its JSON file.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        dict: A private copy with ``videos``, ``annotations``, ``categories``.
    """
    if isinstance(gt, str):
        gt = mmengine.load(gt, backend_args=backend_args)
    else:
        gt = copy.deepcopy(gt)
    if not isinstance(gt, dict):
        raise TypeError(f'YouTube-VIS ground truth must be a dict, got '
                        f'{type(gt)}.')
    for key in ('videos', 'categories'):
        if key not in gt:
            raise KeyError(f"YouTube-VIS ground truth has no '{key}'.")
    gt.setdefault('annotations', [])
    videos = {v['id']: v for v in gt['videos']}
    for ann in gt['annotations']:
        ann.setdefault('iscrowd', 0)
        if 'areas' not in ann:
            video = videos[ann['video_id']]
            ann['areas'] = [
                float(
                    mask_util.area(
                        to_compressed_rle(s, video['height'], video['width'])))
                if s else None for s in ann['segmentations']
            ]
    return gt


def load_ytvis_results(results: ResultsType,
                       backend_args: Optional[dict] = None) -> List[dict]:
    """Load results and make a private, normalised copy of them.

    The official ``loadRes`` writes ``areas``/``bboxes``/``id`` into every
    result and ``_prepare`` replaces items of ``segmentations`` in place, so
    the caller's objects are copied (only the dicts and lists, the RLE
    strings are shared). The order of the results is kept: the official code
    breaks score ties by input order.

    Args:
        results (list[dict] | str): Results in the official format (one dict
            per predicted video-level instance with ``video_id``, ``score``,
            ``category_id`` and ``segmentations``) or the path of the JSON.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        list[dict]: Copied results.
    """
    if isinstance(results, str):
        results = mmengine.load(results, backend_args=backend_args)
    if not isinstance(results, (list, tuple)):
        raise TypeError('YouTube-VIS results must be a list of dicts, got '
                        f'{type(results)}.')
    copied = []
    for i, res in enumerate(results):
        missing = [
            k for k in ('video_id', 'score', 'category_id', 'segmentations')
            if k not in res
        ]
        if missing:
            raise KeyError(f'Result #{i} lacks {missing}.')
        res = dict(res)
        res['score'] = float(res['score'])
        res['segmentations'] = list(res['segmentations'])
        if 'bboxes' in res:
            res['bboxes'] = list(res['bboxes'])
        copied.append(res)
    return copied


def _video_lengths(gt: dict) -> Dict[Any, int]:
    """Number of frames per GT video ('length', else annotation length)."""
    lengths = {
        v['id']: v['length']
        for v in gt['videos'] if v.get('length') is not None
    }
    for ann in gt['annotations']:
        lengths.setdefault(ann['video_id'], len(ann['segmentations']))
    return lengths


def _check_and_normalize_results(results: List[dict], gt: dict,
                                 gt_name: str) -> None:
    """Fail loudly on results that the official code would score wrongly.

    The official code zips prediction and GT frames (a too short prediction
    silently drops GT frames from the union) and merges RLEs of different
    sizes without complaint, so lengths and sizes are checked here. Results
    masks are normalised to compressed RLE in place (on the private copy).
    """
    videos = {v['id']: v for v in gt['videos']}
    lengths = _video_lengths(gt)
    for res in results:
        vid = res['video_id']
        video = videos[vid]
        h, w = int(video['height']), int(video['width'])
        if vid in lengths and len(res['segmentations']) != lengths[vid]:
            raise ValueError(
                f'A result of video {vid} has {len(res["segmentations"])} '
                f'frames but the video has {lengths[vid]} frames in the '
                f'ground truth {gt_name}.')
        segms = res['segmentations']
        for i, segm in enumerate(segms):
            if not segm:
                segms[i] = None
                continue
            rle = to_compressed_rle(segm, h, w)
            if list(rle['size']) != [h, w]:
                raise ValueError(
                    f'A mask of video {vid} (frame {i}) has size '
                    f'{rle["size"]} but the video is {[h, w]} in the ground '
                    f'truth {gt_name}; masks must be at the original video '
                    'resolution.')
            segms[i] = rle


def _check_video_ids(result_video_ids: Iterable, gt: dict, gt_name: str,
                     logger: LoggerType) -> None:
    """Error on unknown video ids, warn on videos without predictions."""
    gt_ids = {v['id'] for v in gt['videos']}
    pred_ids = set(result_video_ids)
    unknown = pred_ids - gt_ids
    if unknown:
        raise ValueError(
            f'{len(unknown)} predicted video id(s) are not in the ground '
            f'truth {gt_name}: {sorted(unknown, key=str)[:10]}. Is the '
            'annotation file the right split?')
    missing = gt_ids - pred_ids
    if missing:
        print_log(
            f'Predictions cover {len(gt_ids) - len(missing)} of the '
            f'{len(gt_ids)} videos of the ground truth {gt_name}; the '
            f'instances of the {len(missing)} missing video(s) (e.g. '
            f'{sorted(missing, key=str)[:5]}) count as misses.',
            logger=logger,
            level=logging.WARNING)


def _run_official(gt: dict, results: List[dict],
                  logger: LoggerType) -> np.ndarray:
    """Run the official evaluator, capturing its prints into the logger."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        gt_api = YTVIS(gt)
        if results:
            dt_api = gt_api.loadRes(results)
        else:
            # ``loadRes`` indexes ``results[0]``; no predictions at all is a
            # legal (if bad) submission and scores 0.
            dt_api = YTVIS()
            dt_api.dataset = dict(
                videos=list(gt['videos']),
                categories=copy.deepcopy(gt['categories']),
                annotations=[])
            dt_api.createIndex()
        evaluator = NumpySafeYTVISeval(gt_api, dt_api, 'segm')
        evaluator.params.vidIds = sorted(gt_api.getVidIds())
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    lines = buffer.getvalue().splitlines()
    mismatch = [line for line in lines if 'may not match' in line]
    if mismatch:
        print_log(
            'YTVISeval: ' + '; '.join(mismatch[:5]),
            logger=logger,
            level=logging.WARNING)
    summary = [line for line in lines if line.startswith(' Average')]
    print_log('\n' + '\n'.join(summary), logger=logger)
    return evaluator.stats


def evaluate_ytvis(gt: GTType,
                   results: ResultsType,
                   video_ids: Optional[Iterable] = None,
                   gt_name: Optional[str] = None,
                   logger: LoggerType = 'current',
                   backend_args: Optional[dict] = None) -> Dict[str, float]:
    """Evaluate YouTube-VIS / OVIS results with the official evaluator.

    Every video of the ground truth is evaluated (a video without
    predictions counts as misses, as on the official server).

    Args:
        gt (dict | str): Native YouTube-VIS ground truth or its JSON path.
        results (list[dict] | str): Results in the official format or the
            path of a results JSON. They are not modified.
        video_ids (Iterable, optional): Ids of the videos that were run
            through the model (a video may legitimately have no
            prediction). Used to check that they all belong to the GT and to
            warn when fewer videos than in the GT were processed. Defaults to
            the video ids present in ``results``.
        gt_name (str, optional): Name of the GT in messages. Defaults to the
            path when ``gt`` is a path.
        logger (Logger | str, optional): Where to log the summary and
            warnings (see ``mmengine.logging.print_log``). Defaults to
            'current'.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        dict[str, float]: The 12 statistics of :data:`YTVIS_METRIC_NAMES`
        (-1 where the GT has no instance in that area range, as officially).
    """
    if gt_name is None:
        gt_name = _describe(gt, 'dict')
    return _evaluate_loaded(
        load_ytvis_gt(gt, backend_args),
        load_ytvis_results(results, backend_args),
        video_ids=video_ids,
        gt_name=gt_name,
        results_name=_describe(results, 'list'),
        logger=logger)


def _evaluate_loaded(gt: dict, results: List[dict],
                     video_ids: Optional[Iterable], gt_name: str,
                     results_name: str,
                     logger: LoggerType) -> Dict[str, float]:
    """:func:`evaluate_ytvis` on private copies of the GT and results."""
    covered = {res['video_id'] for res in results}
    if video_ids is not None:
        covered |= set(video_ids)
    _check_video_ids(covered, gt, gt_name, logger)
    _check_and_normalize_results(results, gt, gt_name)
    cat_ids = {c['id'] for c in gt['categories']}
    foreign = {res['category_id'] for res in results} - cat_ids
    if foreign:
        print_log(
            f'Results {results_name} use category ids {sorted(foreign)} '
            f'that are not in the ground truth {gt_name}; the official '
            'evaluator ignores them.',
            logger=logger,
            level=logging.WARNING)
    stats = _run_official(gt, results, logger)
    return {name: float(stats[i]) for i, name in enumerate(YTVIS_METRIC_NAMES)}


def evaluate_ytvis_subsets(
        gts: Mapping[str, GTType],
        results: ResultsType,
        video_ids: Optional[Iterable] = None,
        logger: LoggerType = 'current',
        backend_args: Optional[dict] = None) -> Dict[str, Dict[str, float]]:
    """Evaluate each subset of a split on the predictions of its own videos.

    This is the YouTube-VIS 2022 protocol: the valid/test split is made of
    short and long videos with separate annotation files; AP_S is computed
    on the short videos, AP_L on the long ones, and the challenge metric is
    their mean.

    Args:
        gts (Mapping[str, dict | str]): Subset name -> GT dict or JSON path,
            e.g. ``dict(short='valid.json', long='valid_long.json')``.
        results (list[dict] | str): Results of all subsets together.
        video_ids (Iterable, optional): Processed video ids, see
            :func:`evaluate_ytvis`.
        logger (Logger | str, optional): See :func:`evaluate_ytvis`.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        dict[str, dict[str, float]]: Subset name -> its 12 statistics.
    """
    if not gts:
        raise ValueError('No ground-truth subset given.')
    results_src = results
    results = load_ytvis_results(results, backend_args)
    loaded = {
        name: (load_ytvis_gt(gt,
                             backend_args), _describe(gt, f"subset '{name}'"))
        for name, gt in gts.items()
    }
    subset_ids = {
        name: {v['id']
               for v in gt['videos']}
        for name, (gt, _) in loaded.items()
    }
    all_ids = {res['video_id'] for res in results}
    if video_ids is not None:
        video_ids = set(video_ids)
        all_ids |= video_ids
    unknown = all_ids - set().union(*subset_ids.values())
    if unknown:
        names = ', '.join(desc for _, desc in loaded.values())
        raise ValueError(
            f'{len(unknown)} predicted video id(s) are in none of the '
            f'ground-truth subsets ({names}): '
            f'{sorted(unknown, key=str)[:10]}.')
    stats = {}
    for name, (gt, desc) in loaded.items():
        ids = subset_ids[name]
        print_log(f'Evaluating subset "{name}" ({desc})', logger=logger)
        stats[name] = _evaluate_loaded(
            gt, [res for res in results if res['video_id'] in ids],
            video_ids=None if video_ids is None else video_ids & ids,
            gt_name=desc,
            results_name=_describe(results_src, 'list'),
            logger=logger)
    return stats
