# Copyright (c) mmookd contributors. All rights reserved.
"""Temporal-consistency (TC) metric of paper A for video instance
segmentation, reported next to YouTube-VIS AP."""
import copy
import json
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.evaluation.metrics.base_video_metric import BaseVideoMetric
from mmdet.registry import METRICS, MODELS
from mmengine.fileio import get_local_path
from pycocotools import mask as mask_util
from torch import Tensor

from ..functional.temporal_consistency import pair_track_ious

__all__ = ['TemporalConsistencyMetric']


def _frame_dict(sample: Any) -> dict:
    return sample.to_dict() if hasattr(sample, 'to_dict') else sample


@METRICS.register_module()
class TemporalConsistencyMetric(BaseVideoMetric):
    """TC (%) of the predicted track masks, with a flow provider.

    :mod:`mmookd.evaluation.functional.temporal_consistency`: for every
    pair of consecutive frames, each track's mask at ``t + 1`` is warped
    to ``t`` (nearest) with the flow ``t -> t + 1`` and compared (IoU) with
    its mask at ``t``, leaving out pixels whose flow source leaves the frame
    and, with ``occlusion='fb'``, pixels failing the forward-backward
    check. TC = mean over videos of the mean IoU over (pair, track).

    Use it beside :class:`YTVISMetric` so that both are reported::

        val_evaluator = [
            dict(type='YTVISMetric', ann_file=...),
            dict(type='TemporalConsistencyMetric',
                 flow=dict(type='RAFTFlowProvider',
                           checkpoint='checkpoints/raft_small.pth'),
                 ann_file=...)]

    Frames are processed as they arrive (only the previous frame of each
    video is kept), at the network input size (the loader's resized
    images); masks are decoded from the RLEs and resized (nearest). Frames
    fed one at a time are paired only when their ``frame_id`` follows the
    previous one of the same video.

    Args:
        flow (dict): Flow provider config (:mod:`mmookd.models.flow`).
        occlusion (str): ``'fb'`` (forward-backward check, two flow passes
            per pair) or ``'none'`` (ETC). Defaults to ``'fb'``.
        bgr_to_rgb (bool): The loader's images are BGR (mmcv's
            ``LoadImageFromFile``). Defaults to True.
        ann_file (str | dict[str, str], optional): Video JSON(s) to split
            the videos into subsets as :class:`YTVISMetric` does (e.g.
            ``dict(short=..., long=...)``): ``TC_<subset>`` per subset and
            ``TC`` their mean. Defaults to None (one ``TC``).
        device (str): ``'auto'`` (CUDA when available), ``'cpu'`` or
            ``'cuda'``, where the flow runs.
        collect_device (str): See :class:`BaseVideoMetric`.
        prefix (str, optional): Defaults to ``'tc'``.
    """

    default_prefix: Optional[str] = 'tc'

    def __init__(self,
                 flow: dict,
                 occlusion: str = 'fb',
                 bgr_to_rgb: bool = True,
                 ann_file: Optional[Union[str, Dict[str, str]]] = None,
                 device: str = 'auto',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if occlusion not in ('fb', 'none'):
            raise ValueError(f"occlusion must be 'fb' or 'none', got "
                             f'{occlusion!r}')
        self.flow_cfg = copy.deepcopy(flow)
        self.occlusion = occlusion
        self.bgr_to_rgb = bgr_to_rgb
        self.ann_file = ann_file
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        self._provider = None
        # video id -> the previous frame (frame id, image, masks) and the
        # IoUs so far
        self._state: Dict[Any, dict] = {}

    @property
    def provider(self):
        """The frozen flow provider, built on first use."""
        if self._provider is None:
            provider = MODELS.build(copy.deepcopy(self.flow_cfg))
            provider.requires_grad_(False)
            self._provider = provider.eval().to(self.device)
        return self._provider

    def flow(self, img: Tensor, img_next: Tensor) -> Tensor:
        """(2, H, W) flow between two (3, H, W) RGB [0, 255] images."""
        return self.provider(img[None], img_next[None])[0]

    # ------------------------------------------------------------------
    def process(self, data_batch: dict, data_samples: Sequence[Any]) -> None:
        """Pair each frame with the previous frame of its video."""
        inputs = data_batch['inputs']
        for imgs, track_sample in zip(inputs, data_samples):
            track = _frame_dict(track_sample)
            frames = [_frame_dict(f) for f in track['video_data_samples']]
            for img, frame in zip(imgs, frames):
                self.add_frame(img, frame)

    def add_frame(self, img: Tensor, frame: dict) -> None:
        """Process one frame: image (3, H, W) and its data sample dict."""
        video_id = frame['video_id']
        frame_id = int(frame['frame_id'])
        img = img.to(self.device).float()
        if self.bgr_to_rgb:
            img = img.flip(0)
        masks = self._masks(frame, img.shape[-2:])
        state = self._state.setdefault(video_id, dict(ious=[], prev=None))
        prev = state['prev']
        if prev is not None and prev['frame_id'] == frame_id - 1:
            flow = self.flow(prev['img'], img)
            flow_back = self.flow(img, prev['img']) \
                if self.occlusion == 'fb' else None
            state['ious'] += pair_track_ious(prev['masks'], masks, flow,
                                             flow_back)
        state['prev'] = dict(frame_id=frame_id, img=img, masks=masks)
        length = int(frame.get('ori_video_length', 0) or 0)
        if length and frame_id == length - 1:
            self._finish(video_id)

    def _masks(self, frame: dict, size) -> Dict[int, Tensor]:
        """Track id -> (H, W) bool mask at the image size."""
        pred = frame['pred_track_instances']
        pred = pred.to_dict() if not isinstance(pred, dict) else pred
        ids = pred['instances_id']
        ids = ids.tolist() if hasattr(ids, 'tolist') else list(ids)
        masks = pred['masks']
        if isinstance(masks, (list, tuple)):
            if len(masks) == 0:
                return {}
            dense = torch.from_numpy(
                np.ascontiguousarray(mask_util.decode(list(masks)))).permute(
                    2, 0, 1)
        else:
            dense = torch.as_tensor(masks)
        if dense.numel() == 0:
            return {}
        dense = F.interpolate(
            dense[None].float().to(self.device),
            size=tuple(size),
            mode='nearest')[0] > 0.5
        return {int(i): m for i, m in zip(ids, dense)}

    def _finish(self, video_id: Any) -> None:
        state = self._state.pop(video_id, None)
        if state is None:
            return
        ious = state['ious']
        self.results.append(
            dict(
                video_id=video_id,
                iou_sum=float(np.sum(ious)) if ious else 0.0,
                count=len(ious)))

    def evaluate(self, size: int = 1) -> dict:
        for video_id in list(self._state):
            self._finish(video_id)
        return super().evaluate(size)

    # ------------------------------------------------------------------
    def _subsets(self) -> Dict[str, set]:
        files = self.ann_file if isinstance(self.ann_file, dict) else {}
        subsets = {}
        for name, path in files.items():
            with get_local_path(path) as local:
                with open(local) as f:
                    subsets[name] = {v['id'] for v in json.load(f)['videos']}
        return subsets

    @staticmethod
    def _tc(results: List[dict]) -> float:
        """Mean over videos (with at least one compared track) in %."""
        per_video = [r['iou_sum'] / r['count'] for r in results if r['count']]
        return float(np.mean(per_video) * 100) if per_video else float('nan')

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """``TC`` (and ``TC_<subset>``), in %."""
        unique: Dict[Any, dict] = {}
        for res in results:
            unique.setdefault(res['video_id'], res)
        results = list(unique.values())
        subsets = self._subsets()
        if not subsets:
            return dict(TC=self._tc(results))
        metrics = {
            f'TC_{name}':
            self._tc([r for r in results if r['video_id'] in ids])
            for name, ids in subsets.items()
        }
        return dict(TC=float(np.mean(list(metrics.values()))), **metrics)
