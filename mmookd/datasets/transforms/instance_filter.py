# Copyright (c) mmookd contributors. All rights reserved.
"""Drop instances that augmentation left empty, frame by frame.

IDOL's and VITA's data mappers run detectron2's ``filter_empty_instances``
after all augmentation (crop, resize, flip): an instance whose box is not
larger than ``1e-5`` in width or height, or whose mask has no foreground
pixel, is not ground truth in that frame. IDOL removes it from the key frame
and gives it id ``-1`` (invalid) in the reference frame, so it is neither a
detection target nor a contrastive positive there. mmookd encodes validity
by presence, as for an object that has left the video: the instance is
removed from the frames where it is empty and kept in the others, which is
the same thing for every loss (the contrastive loss pairs instances by id).

mmdet's ``RandomCrop(recompute_bbox=True)`` keeps an instance whose box
overlaps the crop while its mask does not (a zero box and an empty mask),
and a flip or resize can collapse a one-pixel sliver: without this filter
those would be trained as ground truth.
"""
from typing import Any, Dict

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes

__all__ = ['FilterEmptyInstances', 'box_array', 'mask_nonempty']

#: Per-instance annotation arrays that are filtered together.
INSTANCE_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_masks',
                 'gt_ignore_flags', 'gt_instances_ids')


def box_array(boxes: Any) -> np.ndarray:
    """(N, 4) float32 xyxy array of mmdet boxes or an array."""
    if isinstance(boxes, BaseBoxes):
        return boxes.numpy().astype(np.float32).reshape(-1, 4)
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def mask_nonempty(masks: Any) -> np.ndarray:
    """(N,) bool: masks with at least one foreground pixel."""
    if hasattr(masks, 'areas'):  # BitmapMasks / PolygonMasks
        return np.asarray(masks.areas, dtype=np.float64).reshape(-1) > 0
    masks = np.asarray(masks)
    return masks.reshape(masks.shape[0], -1).any(1)


def valid_instances(frame: Dict[str, Any], min_box_size: float) -> np.ndarray:
    """(N,) bool: instances of one frame with a non-empty box and mask."""
    boxes = box_array(frame['gt_bboxes'])
    valid = ((boxes[:, 2:] - boxes[:, :2]) > min_box_size).all(1)
    if frame.get('gt_masks') is not None:
        valid &= mask_nonempty(frame['gt_masks'])
    return valid


def select_instances(frame: Dict[str, Any], keep: np.ndarray) -> None:
    """Keep the instances ``keep`` (bool) of one frame, in place."""
    inds = np.nonzero(keep)[0]
    for key in INSTANCE_KEYS:
        if frame.get(key) is not None:
            frame[key] = frame[key][inds]


@TRANSFORMS.register_module()
class FilterEmptyInstances(BaseTransform):
    """Remove, in every frame, the instances that are empty there.

    Works on a single image (array-valued keys) or on a clip (per-frame
    lists, as after ``TransformBroadcaster``); place it after the last
    geometric augmentation, before padding and packing.

    Args:
        min_box_size (float): Boxes whose width or height is not above this
            are empty (detectron2's ``nonempty(threshold=1e-5)``).
            Defaults to 1e-5.
        by_mask (bool): Also drop instances with an empty mask. Defaults
            to True.
    """

    def __init__(self,
                 min_box_size: float = 1e-5,
                 by_mask: bool = True) -> None:
        self.min_box_size = min_box_size
        self.by_mask = by_mask

    def _filter_frame(self, frame: Dict[str, Any]) -> None:
        if frame.get('gt_bboxes') is None:
            return
        view = frame if self.by_mask else dict(frame, gt_masks=None)
        select_instances(frame, valid_instances(view, self.min_box_size))

    def transform(self, results: dict) -> dict:
        if not isinstance(results.get('img'), list):
            self._filter_frame(results)
            return results
        num_frames = len(results['img'])
        keys = [k for k in INSTANCE_KEYS if isinstance(results.get(k), list)]
        for i in range(num_frames):
            frame: Dict[str, Any] = {k: results[k][i] for k in keys}
            self._filter_frame(frame)
            for k in keys:
                results[k][i] = frame[k]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'min_box_size={self.min_box_size}, by_mask={self.by_mask})')
