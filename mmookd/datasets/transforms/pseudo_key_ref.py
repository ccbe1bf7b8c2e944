# Copyright (c) mmookd contributors. All rights reserved.
"""COCO pseudo key/reference pairs for IDOL's pre-training (step 2).

docs/hyperparameters.md §6 ("COCO pseudo key/reference pairs") and §10 (step 2
of the three-step recipe): one COCO image is augmented twice, independently,
and the two views are used as the key and the reference frame of a two-frame
"video", so that the contrastive embedding learns to associate instances by
appearance rather than by position. :class:`PseudoKeyRefPair` turns one loaded
image sample into exactly the per-frame-list dict that ``KeyRefFrameSample`` +
``TransformBroadcaster`` produce for real videos, so ``PackTrackInputs``,
``TrackDataPreprocessor`` and :meth:`mmookd.models.vis.IDOL.loss` consume it
unchanged.
"""
import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmdet.registry import TRANSFORMS

from .clip_padding import pad_frame
from .instance_filter import box_array, select_instances, valid_instances

__all__ = ['PseudoKeyRefPair']


@TRANSFORMS.register_module()
class PseudoKeyRefPair(BaseTransform):
    """Make a (key, reference) pseudo pair from one COCO image (§6).

    Input: one image sample after mmdet's ``LoadImageFromFile`` and
    ``LoadAnnotations(with_bbox=True, with_mask=True)`` (``img``,
    ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_masks``, ``gt_ignore_flags``
    and the meta keys ``img_id``, ``img_path``, ``ori_shape``, ...).

    1. Instances get ids ``1..N`` in annotation order (``gt_instances_ids``,
       int32): the correspondence between the views.
    2. The sample is copied and ``view_transforms`` run on each copy with
       their own random draws (PRETRAIN_SAME_CROP False; ``same_aug=True``
       augments once and duplicates the view). IDOL's recipe per view:
       RandomFlip(0.5) -> with p=0.5 [shortest edge {400, 500, 600} ->
       RandomCrop absolute_range (384, 600)] -> shortest edge
       {320, ..., 640}, long side <= 1333.
    3. Instances whose box (w or h <= ``min_box_size``) or mask is empty
       after augmentation are invalid in that view (IDOL gives them id -1).
       mmookd's IDOL encodes validity by presence, as for real videos where
       an instance is missing from a frame: an instance invalid in the
       **key** view is removed from both views; one valid in the key but
       invalid in the **reference** is removed from the reference only, so
       it stays a detection target of the key frame and is skipped by the
       contrastive loss (:meth:`IDOLHead.loss_embed` pairs instances by id).
       Transforms that drop instances themselves (mmdet's ``RandomCrop``
       with boxes fully outside) filter ``gt_instances_ids`` along, so
       the ids stay consistent.
    4. The views usually differ in size; ``PackTrackInputs`` stacks the
       frames of a sample and ``TrackDataPreprocessor`` pads only whole
       clips, so both views are padded (bottom/right, with ``pad_val``) to
       their common size here, together with their masks. ``img_shape``
       keeps each view's own size: DETR's padding mask, the mask head's
       relative coordinates and the box normalisation use it, so padding is
       never treated as image content (IDOL pads key and reference jointly
       in the same way).
    5. Output: every key is a 2-list ``[key, reference]`` like the video
       pipeline's, plus ``frame_id=[0, 1]``, ``key_frame_flags=[True,
       False]``, ``video_id`` = ``img_id``, ``video_length`` =
       ``ori_video_length`` = 2; ``gt_bboxes`` become (N, 4) float32 arrays
       like ``LoadTrackAnnotations``'s.

    Args:
        view_transforms (list[dict | callable]): mmdet transforms applied to
            each view (after loading, before packing).
        same_aug (bool): Use one augmented view for both frames
            (PRETRAIN_SAME_CROP True). Defaults to False.
        min_box_size (float): Boxes with width or height not above this are
            empty (detectron2's ``nonempty(threshold=1e-5)``). Defaults to
            1e-5.
        pad_val (int | float | tuple): Image padding value (in the loaded
            image's channel order). Defaults to 0.
        max_retries (int): Re-draws of a view whose transforms return None
            (e.g. ``RandomCrop(allow_negative_crop=False)`` finding no
            object); after that the whole sample is None and the dataset
            fetches another image. Defaults to 10.
    """

    def __init__(self,
                 view_transforms: Sequence[Union[dict, Any]],
                 same_aug: bool = False,
                 min_box_size: float = 1e-5,
                 pad_val: Union[int, float, Tuple] = 0,
                 max_retries: int = 10) -> None:
        is_list = isinstance(view_transforms, Sequence) and not isinstance(
            view_transforms, str)
        if not is_list:
            raise TypeError('view_transforms must be a list of transforms, '
                            f'got {type(view_transforms)}')
        self.view_pipeline = Compose([
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in view_transforms
        ])
        self.same_aug = same_aug
        self.min_box_size = min_box_size
        self.pad_val = pad_val
        if max_retries < 0:
            raise ValueError(f'max_retries must be >= 0, got {max_retries}')
        self.max_retries = max_retries

    # ------------------------------------------------------------------
    @staticmethod
    def _check_input(results: dict) -> None:
        missing = [
            k for k in ('img', 'gt_bboxes', 'gt_bboxes_labels', 'gt_masks')
            if k not in results
        ]
        if missing:
            raise KeyError(
                f'PseudoKeyRefPair needs a loaded image with boxes and masks '
                f'(LoadImageFromFile + LoadAnnotations(with_bbox=True, '
                f'with_mask=True) before it); missing {missing} for '
                f"{results.get('img_path', 'this sample')}")
        if isinstance(results['img'], list):
            raise TypeError('PseudoKeyRefPair expects a single image sample, '
                            'got per-frame lists (a video sample?)')

    def _augment(self, results: dict) -> Optional[dict]:
        """One independently augmented view (None if it cannot be made)."""
        for _ in range(self.max_retries + 1):
            view = self.view_pipeline(copy.deepcopy(results))
            if view is not None:
                return view
        return None

    # ------------------------------------------------------------------
    def transform(self, results: dict) -> Optional[Dict[str, List]]:
        """Two views of ``results`` as a key/reference frame-list dict."""
        self._check_input(results)
        results = dict(results)
        num = len(results['gt_bboxes_labels'])
        results['gt_instances_ids'] = np.arange(1, num + 1, dtype=np.int32)
        key = self._augment(results)
        if key is None:
            return None
        if self.same_aug:
            ref = copy.deepcopy(key)
        else:
            ref = self._augment(results)
            if ref is None:
                return None
        # invalid in a view -> absent there; invalid in the key -> absent
        # from both views (§6)
        select_instances(key, valid_instances(key, self.min_box_size))
        ref_keep = valid_instances(ref, self.min_box_size) & np.isin(
            ref['gt_instances_ids'], key['gt_instances_ids'])
        select_instances(ref, ref_keep)

        shape = tuple(
            int(max(v['img'].shape[i] for v in (key, ref))) for i in (0, 1))
        views = [key, ref]
        for frame_id, view in enumerate(views):
            pad_frame(view, shape, self.pad_val)
            view['gt_bboxes'] = box_array(view['gt_bboxes'])
            view['gt_bboxes_labels'] = np.asarray(
                view['gt_bboxes_labels'], dtype=np.int64)
            view['gt_instances_ids'] = np.asarray(
                view['gt_instances_ids'], dtype=np.int32)
            if view.get('gt_ignore_flags') is not None:
                view['gt_ignore_flags'] = np.asarray(
                    view['gt_ignore_flags'], dtype=bool)
            view['frame_id'] = frame_id
            view['video_id'] = view.get('img_id')
            view['video_length'] = 2
            view['ori_video_length'] = 2
        keys = list(key) + [k for k in ref if k not in key]
        out = {k: [v.get(k) for v in views] for k in keys}
        out['key_frame_flags'] = [True, False]
        return out

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'view_transforms={self.view_pipeline}, '
                f'same_aug={self.same_aug}, '
                f'min_box_size={self.min_box_size}, '
                f'pad_val={self.pad_val}, max_retries={self.max_retries})')
