# Copyright (c) mmookd contributors. All rights reserved.
"""Datasets shaped exactly like the official downloads, made in seconds.

ToyVIS is small on purpose (frames of 128x96 px, 8 classes), so a config run
on it never meets what the real downloads contain: frames far larger than
IDOL's crop (1280x720, 1920x1080), portrait and odd sizes (720x1280,
1281x719), 40 / 25 / 80 listed categories of which only some occur, the
directory and annotation-file layout of each release, OVIS's long and
heavily occluded videos, crowd tracks, instances absent from some frames.
:func:`generate_realshape` writes such a dataset for one release, with the
release's own paths, so a shipped config runs on it by changing only its
``data_root``. Frames are flat colours with moving shapes (small JPEG
files); their sizes, lengths and layouts are the real ones.

Layouts (relative to the dataset root, the configs' ``data_root``)::

    ytvis2019  {train,valid,test}/JPEGImages/<video>/<00000>.jpg
               {train,valid,test}.json
    ytvis2021  {train,valid,test}/JPEGImages/<video>/<00000>.jpg
               {train,valid,test}/instances.json
    ytvis2022  as ytvis2021 (its train set is 2021's); valid/ also holds
               the long videos (all in valid/instances.json)
    ovis       {train,valid,test}/<video>/img_0000001.jpg
               annotations_{train,valid,test}.json
    coco       {train2017,val2017}/<000000000001>.jpg
               annotations/instances_{train,val}2017.json

Only ``train`` (and COCO) carry annotations, as in the releases; the other
splits list their videos with ``"annotations": null``. YouTube-VIS frames
are named after every 5th source frame (``00000.jpg``, ``00005.jpg``, ...),
OVIS frames consecutively from 1.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as maskUtils

from .ytvis import OVIS_CLASSES, YTVIS_2019_CLASSES, YTVIS_2021_CLASSES

__all__ = [
    'REALSHAPE_KINDS', 'generate_realshape', 'COCO_CLASSES', 'COCO_CAT_IDS'
]

REALSHAPE_KINDS = ('ytvis2019', 'ytvis2021', 'ytvis2022', 'ovis', 'coco')

# The 80 COCO category names, in the order of their (non-contiguous) ids.
COCO_CLASSES = ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus',
                'train', 'truck', 'boat', 'traffic light', 'fire hydrant',
                'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
                'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra',
                'giraffe', 'backpack', 'umbrella', 'handbag', 'tie',
                'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
                'kite', 'baseball bat', 'baseball glove', 'skateboard',
                'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup',
                'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
                'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
                'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
                'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
                'keyboard', 'cell phone', 'microwave', 'oven', 'toaster',
                'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
                'teddy bear', 'hair drier', 'toothbrush')
COCO_CAT_IDS = tuple(
    i for i in range(1, 91)
    if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
assert len(COCO_CAT_IDS) == len(COCO_CLASSES)


@dataclass(frozen=True)
class _Split:
    """One split of a release: where it lives and what videos it has."""
    name: str
    ann_file: str
    img_dir: str
    annotated: bool
    # (width, height, number of frames) per video
    videos: Tuple[Tuple[int, int, int], ...]


# YouTube-VIS: 5-36 annotated frames (every 5th), mostly 1280x720 and
# 640x360, some portrait and odd sizes.
_YTVIS_TRAIN = ((1280, 720, 36), (640, 360, 5), (720, 1280, 20), (1281, 719,
                                                                  13),
                (1280, 720, 27), (640, 360, 9), (640, 480, 18), (1280, 720, 7))
_YTVIS_VALID = ((1280, 720, 19), (640, 360, 5), (720, 1280, 11))
_YTVIS_TEST = ((1280, 720, 8), )
# YouTube-VIS 2022 long videos, sampled as sparsely as the short ones
_YTVIS22_LONG = ((1280, 720, 84), (640, 360, 60))
# OVIS: long videos (100+ frames), all frames annotated, many instances
_OVIS_TRAIN = ((1280, 720, 120), (1920, 1080, 40), (640, 360, 101),
               (720, 1280, 24), (1281, 719, 16))
_OVIS_VALID = ((1280, 720, 105), (640, 360, 22))
_OVIS_TEST = ((1280, 720, 12), )
# COCO: typical image sizes (one "frame" each)
_COCO_TRAIN = tuple(
    (w, h, 1) for w, h in ((640, 480), (480, 640), (640, 427), (500, 375),
                           (640, 360), (427, 640), (612, 612), (640, 480)))
_COCO_VAL = ((640, 480, 1), (640, 427, 1))


def _ytvis_splits(annotation_path: str, long: bool = False) -> List[_Split]:
    valid = _YTVIS_VALID + (_YTVIS22_LONG if long else ())
    return [
        _Split('train', annotation_path.format(split='train'),
               'train/JPEGImages', True, _YTVIS_TRAIN),
        _Split('valid', annotation_path.format(split='valid'),
               'valid/JPEGImages', False, valid),
        _Split('test', annotation_path.format(split='test'), 'test/JPEGImages',
               False, _YTVIS_TEST),
    ]


def _layout(kind: str) -> Tuple[List[_Split], Sequence[str]]:
    """The splits and category names of a release."""
    if kind == 'ytvis2019':
        return _ytvis_splits('{split}.json'), YTVIS_2019_CLASSES
    if kind == 'ytvis2021':
        return _ytvis_splits('{split}/instances.json'), YTVIS_2021_CLASSES
    if kind == 'ytvis2022':
        return (_ytvis_splits('{split}/instances.json',
                              long=True), YTVIS_2021_CLASSES)
    if kind == 'ovis':
        return [
            _Split('train', 'annotations_train.json', 'train', True,
                   _OVIS_TRAIN),
            _Split('valid', 'annotations_valid.json', 'valid', False,
                   _OVIS_VALID),
            _Split('test', 'annotations_test.json', 'test', False, _OVIS_TEST),
        ], OVIS_CLASSES
    if kind == 'coco':
        return [
            _Split('train2017', 'annotations/instances_train2017.json',
                   'train2017', True, _COCO_TRAIN),
            _Split('val2017', 'annotations/instances_val2017.json', 'val2017',
                   True, _COCO_VAL),
        ], COCO_CLASSES
    raise ValueError(f'unknown kind {kind!r}; one of {REALSHAPE_KINDS}')


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (column-major runs, zeros first), the
    encoding of the YouTube-VIS train JSONs."""
    return window_rle(mask.shape[0], mask.shape[1], 0, 0, mask)


def window_rle(height: int, width: int, y0: int, x0: int,
               window: np.ndarray) -> dict:
    """Uncompressed RLE of a ``height x width`` mask that is zero outside
    ``window`` (placed at ``y0, x0``), without building the full mask.

    The window is padded with a zero row above and below, so each of its
    columns starts and ends in background; its column-major transitions
    then map one-to-one onto the full mask's."""
    win = np.asarray(window, dtype=np.int8)
    padded = np.zeros((win.shape[0] + 2, win.shape[1]), dtype=np.int8)
    padded[1:-1] = win
    flat = padded.flatten(order='F')
    change = np.flatnonzero(np.diff(flat)) + 1
    col, row = np.divmod(change, padded.shape[0])
    pos = (x0 + col) * height + (y0 + row - 1)
    bounds = np.concatenate([[0], pos, [height * width]])
    return dict(size=[height, width], counts=[int(c) for c in np.diff(bounds)])


def compressed_rle(rle: dict) -> dict:
    """Compressed (string) RLE of an uncompressed one: the encoding of the
    OVIS JSONs."""
    out = maskUtils.frPyObjects(rle, *rle['size'])
    return dict(size=rle['size'], counts=out['counts'].decode('ascii'))


class _Scene:
    """Moving shapes of one video: visible masks by depth order."""

    def __init__(self, rng: np.random.Generator, width: int, height: int,
                 length: int, num_instances: int, occlusion: bool) -> None:
        self.width, self.height, self.length = width, height, length
        self.background = rng.integers(40, 216, size=3)
        self.tracks = []
        short = min(width, height)
        for _ in range(num_instances):
            size = rng.uniform(0.08, 0.35 if not occlusion else 0.45) * short
            start = rng.uniform([0.1 * width, 0.1 * height],
                                [0.9 * width, 0.9 * height])
            velocity = rng.uniform(-0.02, 0.02, size=2) * short
            # present on a contiguous span of frames (enters / leaves)
            first = 0 if length < 3 or rng.random() < 0.6 else int(
                rng.integers(0, length // 2))
            last = length - 1 if rng.random() < 0.7 else int(
                rng.integers(first, length))
            self.tracks.append(
                dict(
                    size=size,
                    start=start,
                    velocity=velocity,
                    first=first,
                    last=last,
                    aspect=rng.uniform(0.6, 1.6),
                    shape=int(rng.integers(0, 3)),
                    colour=rng.integers(0, 256, size=3)))

    def frame(self, t: int) -> Tuple[np.ndarray, List[Optional[tuple]]]:
        """(image, per track ``(y0, x0, visible window mask)`` or None
        where the track is absent or fully hidden)."""
        img = np.empty((self.height, self.width, 3), dtype=np.uint8)
        img[:] = self.background
        owner = np.full((self.height, self.width), -1, dtype=np.int16)
        windows = []
        for i, tr in enumerate(self.tracks):  # later tracks are in front
            if not tr['first'] <= t <= tr['last']:
                windows.append(None)
                continue
            cx, cy = tr['start'] + t * tr['velocity']
            rx, ry = tr['size'] * tr['aspect'] / 2, tr['size'] / 2
            x0 = int(np.clip(np.floor(cx - rx) - 1, 0, self.width))
            x1 = int(np.clip(np.ceil(cx + rx) + 2, 0, self.width))
            y0 = int(np.clip(np.floor(cy - ry) - 1, 0, self.height))
            y1 = int(np.clip(np.ceil(cy + ry) + 2, 0, self.height))
            if x1 <= x0 or y1 <= y0:
                windows.append(None)
                continue
            layer = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
            lx, ly = cx - x0, cy - y0
            if tr['shape'] == 0:
                cv2.ellipse(layer, (int(round(lx)), int(round(ly))),
                            (max(int(rx), 1), max(int(ry), 1)), 0, 0, 360, 1,
                            -1)
            elif tr['shape'] == 1:
                cv2.rectangle(layer, (int(lx - rx), int(ly - ry)),
                              (int(lx + rx), int(ly + ry)), 1, -1)
            else:
                pts = np.array([[lx, ly - ry], [lx + rx, ly + ry],
                                [lx - rx, ly + ry]]).round().astype(np.int32)
                cv2.fillPoly(layer, [pts], 1)
            inside = layer > 0
            owner[y0:y1, x0:x1][inside] = i
            img[y0:y1, x0:x1][inside] = tr['colour']
            windows.append((y0, x0, y1, x1))
        visible: List[Optional[tuple]] = []
        for i, win in enumerate(windows):
            if win is None:
                visible.append(None)
                continue
            y0, x0, y1, x1 = win
            mask = (owner[y0:y1, x0:x1] == i).astype(np.uint8)
            visible.append((y0, x0, mask) if mask.any() else None)
        return img, visible


def _box(y0: int, x0: int, mask: np.ndarray) -> List[float]:
    ys, xs = np.nonzero(mask)
    bx, by = float(xs.min() + x0), float(ys.min() + y0)
    return [
        bx, by,
        float(xs.max() + x0) + 1 - bx,
        float(ys.max() + y0) + 1 - by
    ]


def _video_name(rng: np.random.Generator) -> str:
    """A YouTube-VIS-like 10-hex-digit video folder name."""
    return ''.join(rng.choice(list('0123456789abcdef'), size=10))


def _write_vis_split(root: str, kind: str, split: _Split,
                     classes: Sequence[str], rng: np.random.Generator,
                     first_video_id: int, first_ann_id: int) -> int:
    """Write one YouTube-VIS / OVIS split; returns the next annotation id."""
    ovis = kind == 'ovis'
    # the categories that occur: a fixed handful (real splits use them all;
    # a few are enough to show that the rest must still be listed)
    used = rng.choice(len(classes), size=min(6, len(classes)), replace=False)
    videos, anns = [], []
    ann_id = first_ann_id
    for v, (width, height, length) in enumerate(split.videos):
        vid = first_video_id + v
        name = _video_name(rng)
        if ovis:
            names = [f'{name}/img_{t + 1:07d}.jpg' for t in range(length)]
        else:
            names = [f'{name}/{5 * t:05d}.jpg' for t in range(length)]
        num = int(rng.integers(4, 8)) if ovis else int(rng.integers(1, 5))
        scene = _Scene(rng, width, height, length, num, occlusion=ovis)
        tracks = [
            dict(segmentations=[], bboxes=[], areas=[]) for _ in range(num)
        ]
        for t, file_name in enumerate(names):
            img, visible = scene.frame(t)
            path = osp.join(root, split.img_dir, file_name)
            os.makedirs(osp.dirname(path), exist_ok=True)
            cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            for track, vis in zip(tracks, visible):
                if vis is None:
                    track['segmentations'].append(None)
                    track['bboxes'].append(None)
                    track['areas'].append(None)
                    continue
                y0, x0, mask = vis
                rle = window_rle(height, width, y0, x0, mask)
                track['segmentations'].append(
                    compressed_rle(rle) if ovis else rle)
                track['bboxes'].append(_box(y0, x0, mask))
                track['areas'].append(int(mask.sum()))
        videos.append(
            dict(
                license=1,
                coco_url='',
                height=height,
                width=width,
                length=length,
                date_captured='2019-04-11 00:55:41.903902',
                file_names=names,
                flickr_url='',
                id=vid))
        if not split.annotated:
            continue
        crowd_left = v % 3 == 2  # every third video has a crowd track
        for k, track in enumerate(tracks):
            if all(s is None for s in track['segmentations']):
                continue  # never visible (fully occluded / outside)
            crowd, crowd_left = int(crowd_left), False
            anns.append(
                dict(
                    id=ann_id,
                    video_id=vid,
                    category_id=int(used[(v + k) % len(used)]) + 1,
                    iscrowd=crowd,
                    height=height,
                    width=width,
                    length=1,
                    **track))
            ann_id += 1
    data = dict(
        info=dict(description=f'mmookd real-shape {kind} {split.name}'),
        licenses=[dict(id=1, name='synthetic', url='')],
        videos=videos,
        categories=[
            dict(supercategory='object', id=i + 1, name=n)
            for i, n in enumerate(classes)
        ],
        annotations=anns if split.annotated else None)
    _dump(data, osp.join(root, split.ann_file))
    return ann_id


def _write_coco_split(root: str, split: _Split,
                      rng: np.random.Generator) -> None:
    images, anns = [], []
    for i, (width, height, _) in enumerate(split.videos):
        img_id = int(rng.integers(1, 600000)) * 100 + i
        file_name = f'{img_id:012d}.jpg'
        scene = _Scene(rng, width, height, 1, int(rng.integers(2, 7)), True)
        img, visible = scene.frame(0)
        path = osp.join(root, split.img_dir, file_name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        images.append(
            dict(
                license=1,
                file_name=file_name,
                coco_url='',
                height=height,
                width=width,
                date_captured='2013-11-14 17:02:52',
                flickr_url='',
                id=img_id))
        for k, vis in enumerate(visible):
            if vis is None:
                continue
            y0, x0, mask = vis
            crowd = int(k == 0 and i % 4 == 3)
            if crowd:
                seg = window_rle(height, width, y0, x0, mask)
            else:
                contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                               cv2.CHAIN_APPROX_SIMPLE)
                seg = [(c.reshape(-1, 2) +
                        [x0, y0]).reshape(-1).astype(float).tolist()
                       for c in contours if len(c) >= 3]
                if not seg:
                    continue
            anns.append(
                dict(
                    segmentation=seg,
                    area=float(mask.sum()),
                    iscrowd=crowd,
                    image_id=img_id,
                    bbox=_box(y0, x0, mask),
                    category_id=int(rng.choice(COCO_CAT_IDS)),
                    id=len(anns) + 1 + 1000 * i))
    data = dict(
        info=dict(description='mmookd real-shape coco'),
        licenses=[dict(id=1, name='synthetic', url='')],
        images=images,
        annotations=anns,
        categories=[
            dict(supercategory='object', id=i, name=n)
            for i, n in zip(COCO_CAT_IDS, COCO_CLASSES)
        ])
    _dump(data, osp.join(root, split.ann_file))


def _dump(data: dict, path: str) -> None:
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)


def generate_realshape(root: str, kind: str, seed: int = 0) -> Dict[str, str]:
    """Write a dataset laid out like the official ``kind`` download.

    Args:
        root (str): The dataset root (a config's ``data_root``); must not
            exist or be empty: nothing is ever overwritten.
        kind (str): One of :data:`REALSHAPE_KINDS`.
        seed (int): Random seed (same seed, same files).

    Returns:
        dict: split name -> annotation file path.
    """
    splits, classes = _layout(kind)
    if osp.isdir(root) and os.listdir(root):
        raise FileExistsError(f'{root} is not empty; real-shape datasets are '
                              'written into a new directory only')
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    ann_files = {}
    video_id, ann_id = 1, 1
    for split in splits:
        if kind == 'coco':
            _write_coco_split(root, split, rng)
        else:
            ann_id = _write_vis_split(root, kind, split, classes, rng,
                                      video_id, ann_id)
            video_id += len(split.videos)
        ann_files[split.name] = osp.join(root, split.ann_file)
    return ann_files
