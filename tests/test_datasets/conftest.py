# Copyright (c) mmookd contributors. All rights reserved.
"""A tiny native YouTube-VIS dataset written into ``tmp_path``.

Two videos of 32x48 JPEGs (``vid_a``: 5 frames, ``vid_b``: 3 frames) with
the three mask encodings found in the wild: uncompressed RLE (YouTube-VIS
train), compressed RLE (predictions / OVIS) and polygons.
"""
import copy
import json
import os
import os.path as osp
from typing import Callable, Optional

import cv2
import numpy as np
import pycocotools.mask as maskUtils
import pytest

H, W = 32, 48
YTVIS19 = ('person', 'giant_panda', 'lizard', 'parrot', 'skateboard', 'sedan',
           'ape', 'dog', 'snake', 'monkey', 'hand', 'rabbit', 'duck', 'cat',
           'cow', 'fish', 'train', 'horse', 'turtle', 'bear', 'motorbike',
           'giraffe', 'leopard', 'fox', 'deer', 'owl', 'surfboard', 'airplane',
           'truck', 'zebra', 'tiger', 'elephant', 'snowboard', 'boat', 'shark',
           'mouse', 'frog', 'eagle', 'earless_seal', 'tennis_racket')


def rect_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def uncompressed_rle(mask: np.ndarray) -> dict:
    """Column-major run lengths starting with zeros (COCO 'counts' list)."""
    flat = mask.flatten(order='F')
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return dict(size=[H, W], counts=[int(c) for c in counts])


def compressed_rle(mask: np.ndarray) -> dict:
    rle = maskUtils.encode(np.asfortranarray(mask))
    return dict(size=[H, W], counts=rle['counts'].decode('ascii'))


def polygon(x0: int, y0: int, x1: int, y1: int) -> list:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def tiny_ytvis_dict(with_annotations: bool = True,
                    categories: Optional[list] = None) -> dict:
    """The native JSON content (categories listed in reverse id order)."""
    if categories is None:
        categories = [
            dict(id=i + 1, name=n, supercategory='object')
            for i, n in enumerate(YTVIS19)
        ][::-1]
    videos = [
        dict(
            id=1,
            width=W,
            height=H,
            length=5,
            file_names=[f'vid_a/{i:05d}.jpg' for i in range(5)]),
        dict(
            id=2,
            width=W,
            height=H,
            length=3,
            file_names=[f'vid_b/{i:05d}.jpg' for i in range(3)]),
    ]
    data = dict(
        info=dict(description='tiny'),
        licenses=[],
        videos=videos,
        categories=categories)
    if not with_annotations:
        return data
    person = rect_mask(3, 2, 20, 12)  # bbox [3, 2, 17, 10]
    dog = rect_mask(25, 10, 45, 30)  # bbox [25, 10, 20, 20]
    data['annotations'] = [
        # person in video 1: uncompressed RLE, absent in frame 2
        dict(
            id=11,
            video_id=1,
            category_id=1,
            iscrowd=0,
            segmentations=[
                None if f == 2 else uncompressed_rle(person) for f in range(5)
            ],
            bboxes=[None if f == 2 else [3, 2, 17, 10] for f in range(5)],
            areas=[None if f == 2 else 170 for f in range(5)],
            width=W,
            height=H,
            length=1),
        # dog in video 1: compressed RLE, no bboxes/areas (computed)
        dict(
            id=12,
            video_id=1,
            category_id=8,
            iscrowd=0,
            segmentations=[compressed_rle(dog) for _ in range(5)]),
        # cat in video 2: polygons, absent in frame 1
        dict(
            id=21,
            video_id=2,
            category_id=14,
            iscrowd=0,
            segmentations=[
                None if f == 1 else polygon(5, 5, 25, 20) for f in range(3)
            ],
            bboxes=[None if f == 1 else [5, 5, 20, 15] for f in range(3)],
            areas=[None if f == 1 else 300 for f in range(3)]),
    ]
    return data


def write_json(path: str, data: dict) -> str:
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def write_frames(img_root: str, data: dict) -> None:
    rng = np.random.RandomState(0)
    for video in data['videos']:
        for name in video['file_names']:
            path = osp.join(img_root, name)
            if osp.exists(path):
                continue
            os.makedirs(osp.dirname(path), exist_ok=True)
            img = rng.randint(0, 255, (H, W, 3), dtype=np.uint8)
            cv2.imwrite(path, img)


@pytest.fixture
def make_ytvis(tmp_path) -> Callable:
    """Factory: ``make_ytvis(name='train.json', with_annotations=True,
    mutate=None, categories=None)`` -> dict(root, ann_file, img_prefix,
    data). ``mutate(data)`` edits the JSON content before it is written."""

    def _make(name: str = 'train.json',
              with_annotations: bool = True,
              mutate: Optional[Callable] = None,
              categories: Optional[list] = None) -> dict:
        data = tiny_ytvis_dict(with_annotations, categories)
        img_prefix = osp.join(str(tmp_path), 'JPEGImages')
        write_frames(img_prefix, data)
        if mutate is not None:
            data = copy.deepcopy(data)
            mutate(data)
        ann_file = write_json(osp.join(str(tmp_path), name), data)
        return dict(
            root=str(tmp_path),
            ann_file=ann_file,
            img_prefix=img_prefix,
            data=data)

    return _make
