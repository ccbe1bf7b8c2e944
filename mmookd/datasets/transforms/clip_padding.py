# Copyright (c) mmookd contributors. All rights reserved.
"""Pad the frames of one sample to a common size before packing.

IDOL crops the key and the reference frame independently (detectron2's
``RandomCrop`` is not clip-aware) and Minor-Paste / resizing can leave the
frames of one sample at different sizes, but ``PackTrackInputs`` stacks the
frames of a sample into one ``(T, C, H, W)`` tensor. The official code pads
every image of a batch to a common size (detectron2's ``ImageList``) and
keeps each image's own size for the padding mask; this transform does the
same inside a sample (``TrackDataPreprocessor`` pads across samples).

Each frame keeps its own ``img_shape``: DETR's padding mask, the box
normalisation, the dynamic mask head's relative coordinates and the mask
targets use it, so the padding is never image content. Images are padded at
the bottom/right with ``pad_val`` (use the pixel mean, which normalises to
~0 like detectron2's zero padding of normalised images); masks with 0.
"""
from typing import Sequence, Tuple, Union

import mmcv
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

__all__ = ['PadClipFrames', 'pad_frame']


def pad_frame(frame: dict, shape: Tuple[int, int],
              pad_val: Union[int, float, Sequence]) -> None:
    """Pad one frame's ``img`` (``pad_val``) and ``gt_masks`` (0) to
    ``shape`` (h, w) at the bottom/right, in place."""
    img = frame['img']
    if img.shape[:2] != tuple(shape):
        if img.ndim == 3 and not isinstance(pad_val, (int, float)):
            pad_val = tuple(pad_val)
        frame['img'] = mmcv.impad(img, shape=shape, pad_val=pad_val)
    masks = frame.get('gt_masks')
    if masks is not None and (masks.height, masks.width) != tuple(shape):
        frame['gt_masks'] = masks.pad(tuple(shape), pad_val=0)


@TRANSFORMS.register_module()
class PadClipFrames(BaseTransform):
    """Pad every frame of a clip to the clip's largest height and width.

    Input: per-frame lists (``img``, optionally ``gt_masks``), as after
    ``TransformBroadcaster``. ``img_shape`` is left as it is (each frame's
    own size); ``pad_shape`` is set to the common size. A sample whose
    frames already agree is returned unchanged.

    Args:
        pad_val (int | float | sequence): Image padding value, in the
            loaded image's channel order. Defaults to 0.
    """

    def __init__(self, pad_val: Union[int, float, Sequence] = 0) -> None:
        self.pad_val = pad_val

    def transform(self, results: dict) -> dict:
        imgs = results['img']
        if not isinstance(imgs, list):
            raise TypeError('PadClipFrames expects per-frame lists (a clip '
                            'sample after TransformBroadcaster), got a '
                            f'single {type(imgs).__name__}')
        shape = (max(img.shape[0]
                     for img in imgs), max(img.shape[1] for img in imgs))
        masks = results.get('gt_masks')
        for i in range(len(imgs)):
            frame = dict(img=imgs[i])
            if isinstance(masks, list):
                frame['gt_masks'] = masks[i]
            pad_frame(frame, shape, self.pad_val)
            imgs[i] = frame['img']
            if isinstance(masks, list):
                masks[i] = frame['gt_masks']
        results['pad_shape'] = [shape] * len(imgs)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(pad_val={self.pad_val})'
