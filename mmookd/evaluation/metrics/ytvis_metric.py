# Copyright (c) mmookd contributors. All rights reserved.
import logging
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from mmdet.evaluation.metrics.base_video_metric import BaseVideoMetric
from mmdet.registry import METRICS
from mmengine.logging import print_log
from pycocotools import mask as mask_util

from ..functional import (
    YTVIS_METRIC_NAMES,
    dump_ytvis_results,
    encode_binary_masks,
    evaluate_ytvis,
    evaluate_ytvis_subsets,
    to_compressed_rle,
)
from ..functional.trackeval_vis import (
    DEFAULT_TRACK_ITEMS,
    TRACK_METRICS,
    evaluate_trackeval,
    evaluate_trackeval_subsets,
    track_count_items,
    track_summary_items,
)

DEFAULT_METRIC_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
                        'AR@1', 'AR@10')


def _as_dict(sample: Any) -> dict:
    """Frames arrive as ``DetDataSample`` (inside a TrackDataSample) or as
    dicts (when a caller already converted them)."""
    return sample.to_dict() if hasattr(sample, 'to_dict') else sample


def _to_list(x: Any) -> list:
    """Flatten a tensor / ndarray / sequence into a Python list."""
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x).reshape(-1).tolist()


@METRICS.register_module()
class YTVISMetric(BaseVideoMetric):
    """YouTube-VIS / OVIS video instance segmentation metric.

    The numbers come from the official evaluator (mmdet's copy of
    youtubevos/cocoapi, made numpy-2 safe, see
    :func:`mmookd.evaluation.functional.evaluate_ytvis`), so they equal the
    CodaLab servers' numbers for the same results.

    Each frame's ``pred_track_instances`` needs ``scores``, ``labels``
    (0-based), ``instances_id`` and ``masks``: binary ``(N, H, W)`` at the
    original video size, or a list of RLE dicts. Masks are RLE-encoded as
    soon as a frame is processed and only RLEs are kept, so a large split
    (OVIS) never holds the dense masks of all videos. A video-level
    prediction is made per track id, as in mmdet's ``YouTubeVISMetric``:
    score = mean of its per-frame scores, category = majority vote of its
    per-frame labels (ties -> smallest label), null masks on the frames
    where the track is absent. The predictions of a video keep the order in
    which the track ids first appear (the official code breaks score ties by
    that order).

    Ground truth, by ``ann_file``:

    * ``str``: a native YouTube-VIS JSON, evaluated exactly like the official
      server: every GT video counts, a video without predictions is all
      misses (a warning is logged if fewer videos were processed than the
      GT has), a processed video that is not in the file is an error.
    * ``dict`` of subsets, e.g. ``dict(short=..., long=...)`` for YouTube-VIS
      2022: each subset is evaluated on the predictions of its own videos;
      the overall ``segm_mAP`` is the mean of the subsets' mAP.
    * ``None``: the GT is rebuilt from the per-frame ``instances`` metainfo
      (``bbox`` xyxy, ``bbox_label``, ``mask``, ``instance_id``,
      ``ignore_flag``), using mask areas for the small/medium/large split
      like the official annotation files (mmdet uses box areas there).

    Labels map to dataset category ids through ``dataset_meta['cat_ids']``
    when the dataset provides it, else ``label + 1``.

    Args:
        metric (str | list[str]): Only ``'youtube_vis_ap'``; kept for config
            compatibility with mmdet's ``YouTubeVISMetric``.
        metric_items (Sequence[str], optional): Statistics to report, any of
            ``mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l, AR@1, AR@10, AR@100,
            AR_s@100, AR_m@100, AR_l@100``. Defaults to all but the last four.
        ann_file (str | dict[str, str], optional): See above. Defaults to
            None.
        outfile_prefix (str, optional): Where to write the results, e.g.
            ``'work_dirs/x/results'``: ``{prefix}.json`` (always when given)
            and ``{prefix}.submission_file.zip`` (with ``format_only``).
            Existing files are never overwritten, a free name is used and
            logged (unless ``overwrite``). Defaults to None.
        overwrite (bool): Replace existing ``outfile_prefix`` files
            (``tools/test.py --force``). Defaults to False.
        format_only (bool): Only write the results and the submission zip,
            no evaluation (official valid/test splits without public GT).
            Requires ``outfile_prefix``. Defaults to False.
        collect_device (str): Device used to collect results across ranks,
            only 'cpu' is supported by ``BaseVideoMetric``.
        prefix (str, optional): Metric name prefix. Defaults to
            ``'youtube_vis'``.
        backend_args (dict, optional): mmengine file backend arguments for
            reading ``ann_file``.
        track_metrics (Sequence[str]): TrackEval metrics to report beside AP,
            any of ``('HOTA', 'CLEAR', 'Identity')``, computed on the same
            video-level predictions by TrackEval's YouTube-VIS protocol
            (:mod:`mmookd.evaluation.functional.trackeval_vis`). Defaults to
            () (AP only; TrackEval is then not needed).
        track_items (Sequence[str], optional): TrackEval summary fields to
            report. Defaults to ``HOTA, DetA, AssA`` (HOTA), ``MOTA, IDSW``
            (CLEAR) and ``IDF1`` (Identity) of the chosen metrics.
        track_score_thr (float): Drop predictions scored below it for the
            TrackEval metrics. Defaults to 0 (TrackEval: keep all).
        track_combine (str): Combine the classes ``'det'``-averaged (pooled)
            or ``'cls'``-averaged, TrackEval's two ways. Defaults to
            ``'det'``.

    Reported keys (before the prefix): ``segm_{item}`` per metric item; for
    subsets additionally ``{subset}/segm_{item}`` and ``segm_mAP_{subset}``
    (e.g. ``segm_mAP_short`` = AP_S, ``segm_mAP_long`` = AP_L) and
    ``segm_mAP`` = mean of the subsets' mAP. With ``track_metrics``: each
    track item by name (e.g. ``HOTA``, ``AssA``, ``IDF1``, ``IDSW``, as
    fractions like AP), for subsets ``{subset}/{item}`` (``short/HOTA`` =
    HOTA_S) and the item over the subsets: their mean, or their sum for
    counts (``IDSW``).
    """

    default_prefix: Optional[str] = 'youtube_vis'

    def __init__(self,
                 metric: Union[str, List[str]] = 'youtube_vis_ap',
                 metric_items: Optional[Sequence[str]] = None,
                 ann_file: Optional[Union[str, Dict[str, str]]] = None,
                 outfile_prefix: Optional[str] = None,
                 format_only: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 overwrite: bool = False,
                 track_metrics: Sequence[str] = (),
                 track_items: Optional[Sequence[str]] = None,
                 track_score_thr: float = 0.0,
                 track_combine: str = 'det') -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        metrics = metric if isinstance(metric, (list, tuple)) else [metric]
        for m in metrics:
            if m != 'youtube_vis_ap':
                raise KeyError(
                    f"metric should be 'youtube_vis_ap', but got {m}.")
        if metric_items is None:
            metric_items = DEFAULT_METRIC_ITEMS
        for item in metric_items:
            if item not in YTVIS_METRIC_NAMES:
                raise KeyError(f'metric item "{item}" is not supported, '
                               f'choose from {YTVIS_METRIC_NAMES}.')
        self.metric_items = tuple(metric_items)
        if isinstance(ann_file, dict) and not ann_file:
            raise ValueError('ann_file is an empty dict of subsets.')
        if format_only and outfile_prefix is None:
            raise ValueError('format_only=True needs outfile_prefix, '
                             'otherwise the results would be lost.')
        self.ann_file = ann_file
        self.outfile_prefix = outfile_prefix
        self.format_only = format_only
        self.overwrite = overwrite
        self.backend_args = backend_args
        self._init_track_metrics(track_metrics, track_items, track_score_thr,
                                 track_combine)
        # video id -> (video length, frame id -> record) for videos fed
        # frame by frame (image-based sampling)
        self._pending: Dict[Any, tuple] = {}

    def _init_track_metrics(self, metrics: Sequence[str],
                            items: Optional[Sequence[str]], score_thr: float,
                            combine: str) -> None:
        """Check the TrackEval options now, not after a whole inference
        pass (this imports TrackEval when metrics are asked for)."""
        metrics = (metrics, ) if isinstance(metrics, str) else tuple(metrics)
        for name in metrics:
            if name not in TRACK_METRICS:
                raise KeyError(f'track metric "{name}" is not supported, '
                               f'choose from {TRACK_METRICS}.')
        if combine not in ('det', 'cls'):
            raise ValueError(
                f"track_combine must be 'det' or 'cls', got {combine!r}.")
        if items is None:
            items = [i for m in metrics for i in DEFAULT_TRACK_ITEMS[m]]
        elif items and not metrics:
            raise ValueError('track_items needs track_metrics.')
        self._track_counts = track_count_items(metrics) if metrics else set()
        known = track_summary_items(metrics) if metrics else []
        for item in items:
            if item not in known:
                raise KeyError(f'track item "{item}" is not given by '
                               f'{metrics}, choose from {known}.')
        self.track_metrics = metrics
        self.track_items = tuple(items)
        self._track_kwargs = dict(
            metrics=metrics, score_thr=score_thr, combine=combine)

    @property
    def _need_gt(self) -> bool:
        """Whether the GT must be rebuilt from the data samples."""
        return self.ann_file is None and not self.format_only

    # ------------------------------------------------------------------
    # processing
    # ------------------------------------------------------------------

    def _label_to_cat_id(self, label: int) -> int:
        cat_ids = (self.dataset_meta or {}).get('cat_ids')
        if cat_ids is not None:
            return int(cat_ids[label])
        return int(label) + 1

    def _parse_frame(self, frame: dict) -> dict:
        """Keep only what the evaluation needs from one frame, masks as RLE.

        Returns:
            dict: ``ids``, ``scores``, ``labels``, ``masks`` (RLE) lists,
            ``shape`` (h, w) and, when the GT is rebuilt, ``gts``.
        """
        pred = frame['pred_track_instances']
        if not isinstance(pred, dict):
            pred = pred.to_dict()
        if 'masks' not in pred:
            raise KeyError('YTVISMetric needs pred_track_instances.masks.')
        ids = _to_list(pred['instances_id'])
        scores = _to_list(pred['scores'])
        labels = _to_list(pred['labels'])
        masks = encode_binary_masks(pred['masks'])
        if not len(ids) == len(scores) == len(labels) == len(masks):
            raise ValueError(
                f'Video {frame.get("video_id")}: pred_track_instances has '
                f'{len(ids)} ids, {len(scores)} scores, {len(labels)} '
                f'labels and {len(masks)} masks.')
        h, w = (int(s) for s in frame['ori_shape'][:2])
        for rle in masks:
            if list(rle['size']) != [h, w]:
                raise ValueError(
                    f'Video {frame.get("video_id")}: a predicted mask has '
                    f'size {rle["size"]} but ori_shape is {[h, w]}; '
                    'YouTube-VIS masks must be at the original resolution.')
        record = dict(
            ids=[int(i) for i in ids],
            scores=[float(s) for s in scores],
            labels=[int(lb) for lb in labels],
            masks=masks,
            shape=(h, w))
        if self._need_gt:
            record['gts'] = [
                self._parse_gt_instance(ins, h, w)
                for ins in frame.get('instances', [])
            ]
        return record

    def _parse_gt_instance(self, ins: dict, h: int, w: int) -> dict:
        mask = ins.get('mask')
        if mask is None or len(mask) == 0:
            raise KeyError(
                'A GT instance has no mask; YTVISMetric with ann_file=None '
                'needs masks in the instances metainfo (or set ann_file).')
        rle = to_compressed_rle(mask, h, w)
        x1, y1, x2, y2 = (float(v) for v in ins['bbox'])
        return dict(
            instance_id=ins['instance_id'],
            category_id=self._label_to_cat_id(int(ins['bbox_label'])),
            iscrowd=int(ins.get('ignore_flag', 0)),
            segmentation=rle,
            bbox=[x1, y1, x2 - x1, y2 - y1],
            area=float(mask_util.area(rle)))

    def process_video(self, data_samples: Sequence[Any]) -> None:
        """Process the frames of one whole video (frame index = position)."""
        frames = [_as_dict(s) for s in data_samples]
        records = [self._parse_frame(f) for f in frames]
        self._add_video(frames[0]['video_id'], records)

    def process_image(self, data_samples: Sequence[Any],
                      video_len: int) -> None:
        """Process one frame of a video fed frame by frame.

        The frame index is the ``frame_id`` metainfo; the video is turned
        into video-level predictions once all its frames were seen.
        """
        frame = _as_dict(data_samples[0])
        video_id = frame['video_id']
        _, pending = self._pending.setdefault(video_id, (video_len, {}))
        pending[int(frame['frame_id'])] = self._parse_frame(frame)
        if len(pending) == video_len:
            self._flush_video(video_id)

    def _flush_video(self, video_id: Any) -> None:
        video_len, pending = self._pending.pop(video_id)
        missing = [i for i in range(video_len) if i not in pending]
        if missing:
            print_log(
                f'Video {video_id}: frames {missing[:10]} were never '
                'processed; they count as frames without predictions.',
                logger='current',
                level=logging.WARNING)
        empty = dict(ids=[], scores=[], labels=[], masks=[])
        shape = next(iter(pending.values()))['shape']
        records = [
            pending.get(i, dict(empty, shape=shape, gts=[]))
            for i in range(video_len)
        ]
        self._add_video(video_id, records)

    def _add_video(self, video_id: Any, records: List[dict]) -> None:
        """Turn per-frame records into video-level results (RLE only)."""
        h, w = records[0]['shape']
        video = dict(id=video_id, height=h, width=w, length=len(records))
        self.results.append(
            dict(
                video=video,
                preds=self._video_preds(video_id, records),
                gts=self._video_gts(video_id, records)
                if self._need_gt else None))

    def _video_preds(self, video_id: Any, records: List[dict]) -> List[dict]:
        """Per track id: mean score, majority label, null-padded masks."""
        tracks: Dict[int, dict] = OrderedDict()
        for frame_idx, rec in enumerate(records):
            for tid, score, label, rle in zip(rec['ids'], rec['scores'],
                                              rec['labels'], rec['masks']):
                track = tracks.setdefault(
                    tid, dict(scores=[], labels=[], segms={}, frame_pos={}))
                if frame_idx in track['segms']:
                    # Some trackers (e.g. mmdet's MaskTrackRCNNTracker) can
                    # give one id to two detections of a frame; the YTVIS
                    # format has one mask per track and frame, so keep the
                    # higher-scoring detection and say so.
                    pos = track['frame_pos'][frame_idx]
                    print_log(
                        f'Video {video_id}, frame {frame_idx}: instance id '
                        f'{tid} is predicted twice; keeping the higher '
                        'score.',
                        logger='current',
                        level=logging.WARNING)
                    if score <= track['scores'][pos]:
                        continue
                    track['scores'][pos] = score
                    track['labels'][pos] = label
                    track['segms'][frame_idx] = rle
                    continue
                track['frame_pos'][frame_idx] = len(track['scores'])
                track['scores'].append(score)
                track['labels'].append(label)
                track['segms'][frame_idx] = rle
        preds = []
        for track in tracks.values():
            label = int(np.bincount(np.asarray(track['labels'])).argmax())
            preds.append(
                dict(
                    video_id=video_id,
                    score=float(np.mean(track['scores'])),
                    category_id=self._label_to_cat_id(label),
                    segmentations=[
                        track['segms'].get(i) for i in range(len(records))
                    ]))
        return preds

    @staticmethod
    def _video_gts(video_id: Any, records: List[dict]) -> List[dict]:
        """Per GT instance id: official annotation with null frames."""
        length = len(records)
        instances: Dict[Any, dict] = OrderedDict()
        for frame_idx, rec in enumerate(records):
            for ins in rec['gts']:
                ann = instances.get(ins['instance_id'])
                if ann is None:
                    ann = instances[ins['instance_id']] = dict(
                        video_id=video_id,
                        category_id=ins['category_id'],
                        iscrowd=ins['iscrowd'],
                        segmentations=[None] * length,
                        bboxes=[None] * length,
                        areas=[None] * length)
                ann['segmentations'][frame_idx] = ins['segmentation']
                ann['bboxes'][frame_idx] = ins['bbox']
                ann['areas'][frame_idx] = ins['area']
        return list(instances.values())

    # ------------------------------------------------------------------
    # evaluation
    # ------------------------------------------------------------------

    def evaluate(self, size: int = 1) -> dict:
        """Finish videos fed frame by frame, then collect and compute."""
        for video_id in list(self._pending):
            self._flush_video(video_id)
        return super().evaluate(size)

    def _build_gt(self, videos: List[dict], gts: List[dict]) -> dict:
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:
            raise KeyError("dataset_meta['classes'] is needed to rebuild the "
                           'ground truth when ann_file is None.')
        categories = [
            dict(id=self._label_to_cat_id(i), name=name)
            for i, name in enumerate(classes)
        ]
        annotations = []
        for ann in gts:
            annotations.append(dict(ann, id=len(annotations) + 1))
        return dict(
            videos=videos, categories=categories, annotations=annotations)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the metrics from the per-video results of all ranks.

        Args:
            results (list[dict]): One dict per processed video with ``video``
                (id, height, width, length), ``preds`` (official format) and
                ``gts`` (rebuilt GT annotations or None).

        Returns:
            dict[str, float]: The metrics, see the class docstring. Empty
            with ``format_only``.
        """
        # Padding of distributed samplers can process a video twice.
        unique: Dict[Any, dict] = {}
        for res in results:
            unique.setdefault(res['video']['id'], res)
        if len(unique) < len(results):
            print_log(
                f'{len(results) - len(unique)} video(s) were processed more '
                'than once (distributed sampler padding?); keeping the '
                'first copy.',
                logger='current',
                level=logging.WARNING)
        # Sorting whole videos makes the written file independent of the
        # processing order / world size; it does not change the metric (the
        # official code breaks ties only inside a video, where the order is
        # kept).
        ordered = sorted(unique.values(), key=lambda r: r['video']['id'])
        preds = [p for res in ordered for p in res['preds']]
        video_ids = [res['video']['id'] for res in ordered]

        if self.outfile_prefix is not None:
            dump_ytvis_results(
                preds,
                self.outfile_prefix,
                make_zip=self.format_only,
                overwrite=self.overwrite)
        if self.format_only:
            return dict()

        eval_results: Dict[str, float] = OrderedDict()
        if isinstance(self.ann_file, dict):
            subsets = evaluate_ytvis_subsets(
                self.ann_file,
                preds,
                video_ids=video_ids,
                backend_args=self.backend_args)
            eval_results['segm_mAP'] = float(
                np.mean([stats['mAP'] for stats in subsets.values()]))
            for name, stats in subsets.items():
                eval_results[f'segm_mAP_{name}'] = stats['mAP']
            for name, stats in subsets.items():
                for item in self.metric_items:
                    eval_results[f'{name}/segm_{item}'] = stats[item]
            if self.track_metrics:
                eval_results.update(self._track_subsets(preds))
            return eval_results

        if self.ann_file is None:
            gt = self._build_gt([res['video'] for res in ordered],
                                [g for res in ordered for g in res['gts']])
            gt_name = 'rebuilt from the data samples'
        else:
            gt, gt_name = self.ann_file, None
        stats = evaluate_ytvis(
            gt,
            preds,
            video_ids=video_ids,
            gt_name=gt_name,
            backend_args=self.backend_args)
        for item in self.metric_items:
            eval_results[f'segm_{item}'] = stats[item]
        if self.track_metrics:
            track = evaluate_trackeval(
                gt,
                preds,
                backend_args=self.backend_args,
                **self._track_kwargs)
            eval_results.update(
                {item: track[item]
                 for item in self.track_items})
        return eval_results

    def _track_subsets(self, preds: List[dict]) -> Dict[str, float]:
        """TrackEval items per subset, and over the subsets (mean, or sum
        for counts)."""
        track = evaluate_trackeval_subsets(
            self.ann_file,
            preds,
            backend_args=self.backend_args,
            **self._track_kwargs)
        out: Dict[str, float] = OrderedDict()
        for item in self.track_items:
            vals = [stats[item] for stats in track.values()]
            out[item] = float(
                np.sum(vals) if item in self._track_counts else np.mean(vals))
        for name, stats in track.items():
            for item in self.track_items:
                out[f'{name}/{item}'] = stats[item]
        return out
