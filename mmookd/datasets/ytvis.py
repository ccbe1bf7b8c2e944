# Copyright (c) mmookd contributors. All rights reserved.
"""YouTube-VIS 2019/2021/2022 and OVIS datasets read from their native JSON.

The native format stores one annotation per *object track* with per-frame
lists (``segmentations``, ``bboxes``, ``areas``; ``null`` where the object is
absent). mmdet's :class:`BaseVideoDataset` expects CocoVID (one annotation
per frame), so without this class users have to convert first. Here the
native JSON is read directly and turned into exactly the ``data_list`` that
:class:`BaseVideoDataset` builds, so mmdet's samplers, ``prepare_data``,
``filter_data``, ``LoadTrackAnnotations`` and ``PackTrackInputs`` work
unchanged.

The parsing/validation helpers (:func:`load_vis_json`,
:func:`parse_vis_json`, :func:`frame_instance`) are shared with
:mod:`mmookd.datasets.converters` so that a converted CocoVID file loads the
very same instances.
"""
import copy
import json
import logging
import math
import os
import os.path as osp
import re
from collections import defaultdict
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import mmengine.fileio as fileio
import pycocotools.mask as maskUtils
from mmdet.datasets import BaseVideoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

__all__ = [
    'VISDataError', 'YTVISDataset', 'YTVIS_2019_CLASSES', 'YTVIS_2021_CLASSES',
    'OVIS_CLASSES', 'YTVIS_2019_METAINFO', 'YTVIS_2021_METAINFO',
    'YTVIS_2022_METAINFO', 'OVIS_METAINFO', 'VIS_METAINFOS', 'load_vis_json',
    'parse_vis_json', 'frame_instance', 'VISAnnotations', 'file_name_problem',
    'segmentation_problem', 'bbox_problem'
]

# Category names in the order of the official category ids (1..N), copied
# from mmdet's ``YouTubeVISDataset`` (2019/2021) and the OVIS release.
YTVIS_2019_CLASSES = ('person', 'giant_panda', 'lizard', 'parrot',
                      'skateboard', 'sedan', 'ape', 'dog', 'snake', 'monkey',
                      'hand', 'rabbit', 'duck', 'cat', 'cow', 'fish', 'train',
                      'horse', 'turtle', 'bear', 'motorbike', 'giraffe',
                      'leopard', 'fox', 'deer', 'owl', 'surfboard', 'airplane',
                      'truck', 'zebra', 'tiger', 'elephant', 'snowboard',
                      'boat', 'shark', 'mouse', 'frog', 'eagle',
                      'earless_seal', 'tennis_racket')
YTVIS_2021_CLASSES = ('airplane', 'bear', 'bird', 'boat', 'car', 'cat', 'cow',
                      'deer', 'dog', 'duck', 'earless_seal', 'elephant',
                      'fish', 'flying_disc', 'fox', 'frog', 'giant_panda',
                      'giraffe', 'horse', 'leopard', 'lizard', 'monkey',
                      'motorbike', 'mouse', 'parrot', 'person', 'rabbit',
                      'shark', 'skateboard', 'snake', 'snowboard', 'squirrel',
                      'surfboard', 'tennis_racket', 'tiger', 'train', 'truck',
                      'turtle', 'whale', 'zebra')
# 'Vehical' is the official (misspelt) OVIS category name.
OVIS_CLASSES = ('Person', 'Bird', 'Cat', 'Dog', 'Horse', 'Sheep', 'Cow',
                'Elephant', 'Bear', 'Zebra', 'Giraffe', 'Poultry',
                'Giant_panda', 'Lizard', 'Parrot', 'Monkey', 'Rabbit', 'Tiger',
                'Fish', 'Turtle', 'Bicycle', 'Motorcycle', 'Airplane', 'Boat',
                'Vehical')

YTVIS_2019_METAINFO = dict(classes=YTVIS_2019_CLASSES)
YTVIS_2021_METAINFO = dict(classes=YTVIS_2021_CLASSES)
# YouTube-VIS 2022 reuses the 2021 categories (it only adds long videos).
YTVIS_2022_METAINFO = dict(classes=YTVIS_2021_CLASSES)
OVIS_METAINFO = dict(classes=OVIS_CLASSES)
VIS_METAINFOS = {
    '2019': YTVIS_2019_METAINFO,
    '2021': YTVIS_2021_METAINFO,
    '2022': YTVIS_2022_METAINFO,
    'ovis': OVIS_METAINFO,
}


class VISDataError(ValueError):
    """Malformed or inconsistent VIS annotation file or missing frames.

    Messages always name the annotation file and, where it applies, the
    video (and annotation / frame), so a bad download or a hand-edited JSON
    is found without a debugger.
    """


class VISAnnotations(NamedTuple):
    """Validated content of a native VIS JSON.

    ``dropped`` lists ``(video id, annotation id)`` of tracks that are null
    in every frame: they carry no supervision and are left out of
    ``anns_by_video``.
    """
    videos: List[dict]
    categories: List[dict]
    anns_by_video: Dict[Any, List[dict]]
    has_annotations: bool
    dropped: Tuple[Tuple[Any, Any], ...] = ()


def load_vis_json(ann_file: str, backend_args: Optional[dict] = None) -> dict:
    """Read (never write) a JSON file and turn I/O or syntax problems into
    :class:`VISDataError` naming the file and the error position."""
    try:
        raw = fileio.get(ann_file, backend_args=backend_args)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
        raise VISDataError(
            f'annotation file not found: {ann_file!r} ({e})') from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise VISDataError(
            f'{ann_file}: corrupt JSON at line {e.lineno} column {e.colno} '
            f'(char {e.pos}): {e.msg}') from None
    except UnicodeDecodeError as e:
        raise VISDataError(f'{ann_file}: not a UTF-8 JSON file '
                           f'(byte {e.start}: {e.reason})') from None
    if not isinstance(data, dict):
        raise VISDataError(f'{ann_file}: the top level must be a JSON object '
                           f'with "videos" and "categories", got '
                           f'{type(data).__name__}')
    return data


def _video_desc(video: dict) -> str:
    """``video 3 ('0043f083b5')``: the id plus the folder name users see."""
    names = video.get('file_names')
    folder = ''
    if isinstance(names, list) and names and isinstance(names[0], str):
        folder = osp.dirname(names[0])
    return f"video {video.get('id')}" + (f' ({folder!r})' if folder else '')


def _require_keys(obj: Any, keys: Sequence[str], what: str,
                  ann_file: str) -> None:
    if not isinstance(obj, dict):
        raise VISDataError(f'{ann_file}: {what} must be a JSON object, got '
                           f'{type(obj).__name__}')
    missing = [k for k in keys if k not in obj]
    if missing:
        raise VISDataError(f'{ann_file}: {what} is missing key(s) {missing}')


# pycocotools' compressed RLE: 6-bit groups stored as chars 48..111
# ('0'..'o'); a count ends with a char without the continuation bit 0x20
# ('0'..'O').
_RLE_STRING = re.compile('[0-o]*[0-O]')
_DRIVE = re.compile('[A-Za-z]:')
_SEPARATORS = re.compile(r'[/\\]')


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def file_name_problem(name: Any) -> Optional[str]:
    """Why a ``file_names`` entry cannot be joined to the image folder.

    Absolute paths and ``..`` components would read files outside the
    dataset (``osp.join`` drops the prefix for an absolute path), so they are
    refused instead of being resolved. Returns None for a valid entry.
    """
    if not isinstance(name, str) or not name:
        return f'must be a non-empty relative path, got {name!r}'
    if '..' not in name and name[0] not in '/\\' and name[1:2] != ':':
        return None  # the fast path for ~100k frames
    if osp.isabs(name) or name[0] in '/\\' or _DRIVE.match(name):
        return f'{name!r} is an absolute path'
    if '..' in _SEPARATORS.split(name):
        return f'{name!r} leaves the image folder (".." component)'
    return None


def segmentation_problem(seg: Any, height: int, width: int) -> Optional[str]:
    """Cheap structural check of one mask (no decoding); None if valid.

    RLE must have the video's size and counts that pycocotools can decode:
    a count list of non-negative ints summing to ``height * width``, or a
    string of its 6-bit alphabet ending a count. pycocotools itself does not
    check this and decodes garbage into garbage (or writes past the mask).
    Polygons are lists (checked by the dataset checker).
    """
    if isinstance(seg, list):
        return None
    if not isinstance(seg, dict) or 'counts' not in seg or 'size' not in seg:
        return ('segmentation must be an RLE dict with "size" and "counts" '
                f'or a list of polygons, got {type(seg).__name__}')
    size = seg['size']
    if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
        return (f'mask size {size} (height, width) differs from the video '
                f'size [{height}, {width}]')
    counts = seg['counts']
    if isinstance(counts, list):
        # sum() and min() run in C: the 100k+ masks of YouTube-VIS train
        # stay well under a second
        try:
            total = sum(counts)
        except TypeError:
            total = None
        if not isinstance(total, int):
            return 'RLE counts must be integers'
        if counts and min(counts) < 0:
            return f'RLE counts has negative run {min(counts)}'
        if total != height * width:
            return (f'RLE counts sum to {total}, not height * width = '
                    f'{height * width}')
        return None
    if isinstance(counts, str):
        if _RLE_STRING.fullmatch(counts) is None:
            return (f'RLE counts string {_clip(counts)!r} is not a '
                    'pycocotools compressed RLE')
        return None
    return ('RLE counts must be a list of ints or a compressed string, got '
            f'{type(counts).__name__}')


def bbox_problem(bbox: Any) -> Optional[str]:
    """``[x, y, w, h]`` of finite numbers with ``w, h >= 0`` (or null)."""
    if bbox is None:
        return None
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(
            type(v) in (int, float) and math.isfinite(v) for v in bbox):
        return f'bbox must be [x, y, w, h] or null, got {bbox}'
    if bbox[2] < 0 or bbox[3] < 0:
        return f'bbox {bbox} has a negative width or height'
    return None


def _clip(text: str, num: int = 40) -> str:
    return text if len(text) <= num else text[:num] + '...'


def parse_vis_json(data: dict, ann_file: str = '<json>') -> VISAnnotations:
    """Validate a native YouTube-VIS/OVIS dict and index it.

    Checks everything that would otherwise fail later in a worker process
    with an unhelpful message (see :class:`VISDataError`), or train on
    garbage without a word: frame paths outside the image folder, RLE
    counts pycocotools cannot decode, negative boxes. Only cheap structural
    checks: decoding every mask and frame is the dataset checker's job
    (:mod:`mmookd.datasets.checker`). Frame files are not checked here (that
    needs the image prefix). Annotations null in every frame are dropped
    with one warning: they carry no supervision.
    """
    missing = [k for k in ('videos', 'categories') if k not in data]
    if missing:
        raise VISDataError(
            f'{ann_file}: missing top-level key(s) {missing}; a YouTube-VIS/'
            "OVIS JSON needs 'videos' and 'categories' (and 'annotations' "
            'for splits with ground truth)')
    for key in ('videos', 'categories'):
        if not isinstance(data[key], list):
            raise VISDataError(f'{ann_file}: top-level {key!r} must be a '
                               f'list, got {type(data[key]).__name__}')
    anns = data.get('annotations')
    if anns is None:
        anns = []
    if not isinstance(anns, list):
        raise VISDataError(f"{ann_file}: top-level 'annotations' must be a "
                           f'list, got {type(anns).__name__}')

    categories = {}
    for i, cat in enumerate(data['categories']):
        _require_keys(cat, ('id', 'name'), f'category #{i}', ann_file)
        if cat['id'] in categories:
            raise VISDataError(
                f"{ann_file}: duplicate category id {cat['id']}")
        categories[cat['id']] = cat

    videos: Dict[Any, dict] = {}
    for i, video in enumerate(data['videos']):
        _require_keys(video, ('id', 'width', 'height', 'file_names'),
                      f'video #{i}', ann_file)
        vid = video['id']
        if vid in videos:
            raise VISDataError(f'{ann_file}: duplicate video id {vid} '
                               f'({_video_desc(videos[vid])} and '
                               f'{_video_desc(video)})')
        names = video['file_names']
        length = video.get('length', None)
        if not isinstance(names, list) or len(names) == 0 or length == 0:
            num = len(names) if isinstance(names, list) else names
            raise VISDataError(
                f'{ann_file}: {_video_desc(video)} is an empty video '
                f"(length {length}, file_names: {num})")
        if length is not None and length != len(names):
            raise VISDataError(
                f"{ann_file}: {_video_desc(video)}: 'length' is {length} but "
                f"'file_names' lists {len(names)} frames")
        for f, name in enumerate(names):
            problem = file_name_problem(name)
            if problem is not None:
                raise VISDataError(
                    f"{ann_file}: {_video_desc(video)}: 'file_names'[{f}] "
                    f'{problem}; frames must be relative paths inside the '
                    'image folder')
        videos[vid] = video

    anns_by_video: Dict[Any, List[dict]] = {vid: [] for vid in videos}
    ann_ids = set()
    dropped = []
    for i, ann in enumerate(anns):
        _require_keys(ann, ('id', 'video_id', 'category_id', 'segmentations'),
                      f'annotation #{i}', ann_file)
        aid, vid = ann['id'], ann['video_id']
        if aid in ann_ids:
            raise VISDataError(f'{ann_file}: duplicate annotation id {aid} '
                               f'(video {vid})')
        ann_ids.add(aid)
        if vid not in videos:
            raise VISDataError(f'{ann_file}: annotation {aid} references '
                               f'unknown video id {vid}')
        video = videos[vid]
        vdesc = _video_desc(video)
        if ann['category_id'] not in categories:
            raise VISDataError(
                f'{ann_file}: {vdesc}, annotation {aid}: unknown category id '
                f"{ann['category_id']} (known ids: {sorted(categories)})")
        length = len(video['file_names'])
        for key in ('segmentations', 'bboxes', 'areas'):
            values = ann.get(key)
            if values is None and key != 'segmentations':
                continue
            if not isinstance(values, list) or len(values) != length:
                num = len(values) if isinstance(values, list) else values
                raise VISDataError(
                    f'{ann_file}: {vdesc}, annotation {aid}: {key!r} has '
                    f'{num} entries but the video has {length} frames')
        bboxes = ann.get('bboxes')
        for f, seg in enumerate(ann['segmentations']):
            problem = None
            if seg is not None:
                problem = segmentation_problem(seg, video['height'],
                                               video['width'])
            if problem is None and bboxes is not None:
                problem = bbox_problem(bboxes[f])
            if problem is not None:
                raise VISDataError(f'{ann_file}: {vdesc}, annotation {aid}, '
                                   f'frame {f}: {problem}')
        if all(seg is None for seg in ann['segmentations']):
            dropped.append((vid, aid))
            continue
        anns_by_video[vid].append(ann)

    if dropped:
        shown = ', '.join(f'annotation {a} (video {v})'
                          for v, a in dropped[:5])
        more = f', ... and {len(dropped) - 5} more' if len(dropped) > 5 else ''
        print_log(
            f'{ann_file}: ignoring {len(dropped)} annotation(s) that are '
            f'null in every frame (no mask to learn or evaluate): '
            f'{shown}{more}',
            logger='current',
            level=logging.WARNING)
    return VISAnnotations(
        videos=list(videos.values()),
        categories=sorted(categories.values(), key=lambda c: c['id']),
        anns_by_video=anns_by_video,
        has_annotations=len(anns) > 0,
        dropped=tuple(dropped))


def _to_rle(seg: Any, height: int, width: int) -> dict:
    """Any COCO mask encoding -> compressed RLE (for area / bbox)."""
    if isinstance(seg, list):
        return maskUtils.merge(maskUtils.frPyObjects(seg, height, width))
    if isinstance(seg['counts'], list):
        return maskUtils.frPyObjects(seg, height, width)
    counts = seg['counts']
    if isinstance(counts, str):
        counts = counts.encode('ascii')
    return dict(size=seg['size'], counts=counts)


def frame_instance(ann: dict, frame: int, height: int,
                   width: int) -> Optional[Tuple[Any, List[float], float]]:
    """``(segmentation, [x, y, w, h], area)`` of a track at one frame.

    Returns None where the object is absent (null segmentation). Missing
    ``bboxes``/``areas`` entries are computed from the mask, so converter
    and dataset agree.
    """
    seg = ann['segmentations'][frame]
    if seg is None:
        return None
    bboxes, areas = ann.get('bboxes'), ann.get('areas')
    bbox = bboxes[frame] if bboxes is not None else None
    area = areas[frame] if areas is not None else None
    if bbox is None or area is None:
        rle = _to_rle(seg, height, width)
        if bbox is None:
            bbox = maskUtils.toBbox(rle).tolist()
        if area is None:
            area = float(maskUtils.area(rle))
    return seg, [float(v) for v in bbox], float(area)


@DATASETS.register_module()
class YTVISDataset(BaseVideoDataset):
    """YouTube-VIS (2019/2021/2022) and OVIS from the native JSON.

    Produces the same ``data_list`` as mmdet's :class:`BaseVideoDataset`::

        dict(video_id, video_length, images=[dict(
            img_id, img_path, height, width, frame_id, video_id,
            instances=[dict(bbox (xyxy), bbox_label, mask (as in the JSON),
                            instance_id (annotation id), ignore_flag)])])

    ``img_id`` runs from 1 over all frames in file order (the same ids as
    :func:`mmookd.datasets.converters.ytvis_to_cocovid` writes). Frames where
    an object is absent (null) or degenerate (area <= 0, w or h < 1, box
    outside the image, exactly as mmdet's loader) have no instance for it.
    Splits without ``annotations`` (valid/test) load with empty instances.

    Classes come from ``metainfo['classes']`` (matched to the JSON
    categories by name; categories not listed are skipped), else from
    ``dataset_version``'s preset, else from the JSON categories sorted by id.
    The dataset category id of every label is kept as
    ``self.cat_ids[label]`` and in ``metainfo['cat_ids']`` (set when the
    annotation file is loaded), so a metric can map labels back to the ids of
    the submission format. Class attributes are never modified, so datasets
    of different versions can coexist in one process.

    Args:
        dataset_version (str, optional): '2019', '2021', '2022' or 'ovis':
            use that preset's class list (``metainfo`` keys still win).
        check_files (bool): Check at load time that every frame file exists
            (local backend only; skipped when ``backend_args`` or the image
            prefix select another backend). Defaults to True.
        backend_args (dict, optional): File backend for the annotation file
            and the frames.
        *args, **kwargs: See :class:`BaseVideoDataset` / ``BaseDataset``.
            Note that ``filter_cfg=None`` in training mode drops frames
            without instances (mmdet's behaviour); pass
            ``filter_cfg=dict(filter_empty_gt=False)`` to keep them. Videos
            left without frames are removed.
    """

    METAINFO: dict = dict()

    def __init__(self,
                 *args,
                 dataset_version: Optional[str] = None,
                 check_files: bool = True,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if dataset_version is not None:
            if str(dataset_version).lower() not in VIS_METAINFOS:
                raise ValueError(
                    f'unknown dataset_version {dataset_version!r}; choose '
                    f'one of {sorted(VIS_METAINFOS)}')
            preset = copy.deepcopy(VIS_METAINFOS[str(dataset_version).lower()])
            if metainfo is not None:
                preset.update(metainfo)
            metainfo = preset
        self.dataset_version = dataset_version
        self.check_files = check_files
        super().__init__(*args, metainfo=metainfo, **kwargs)

    def _resolve_classes(self, categories: List[dict]) -> List[Any]:
        """Label order -> dataset category ids; fills ``classes`` if unset."""
        classes = self._metainfo.get('classes', None)
        if classes is None:
            self._metainfo['classes'] = tuple(c['name'] for c in categories)
            return [c['id'] for c in categories]
        name2id = {}
        for cat in categories:
            name2id.setdefault(cat['name'], cat['id'])
        missing = [name for name in classes if name not in name2id]
        if missing:
            raise VISDataError(
                f'{self.ann_file}: class(es) {missing} from metainfo are not '
                f'categories of this file (it has '
                f"{[c['name'] for c in categories]}); check the "
                'dataset_version / metainfo')
        return [name2id[name] for name in classes]

    def load_data_list(self) -> List[dict]:
        """Read and validate the native JSON; build video-level items."""
        data = load_vis_json(self.ann_file, self.backend_args)
        parsed = parse_vis_json(data, self.ann_file)
        del data

        self.cat_ids = self._resolve_classes(parsed.categories)
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self._metainfo['cat_ids'] = list(self.cat_ids)
        # ``filter_data`` of BaseVideoDataset reads these two.
        self.cat_img_map: Dict[Any, List[int]] = defaultdict(list)
        self.img_ids_with_ann = set()

        img_prefix = self.data_prefix.get('img_path', None)
        data_list = []
        img_id = 0
        for video in parsed.videos:
            vid, height, width = video['id'], video['height'], video['width']
            images = []
            for frame_id, file_name in enumerate(video['file_names']):
                img_id += 1
                img_path = (
                    osp.join(img_prefix, file_name)
                    if img_prefix is not None else file_name)
                images.append(
                    dict(
                        img_id=img_id,
                        img_path=img_path,
                        height=height,
                        width=width,
                        frame_id=frame_id,
                        video_id=vid,
                        instances=[]))
            for ann in parsed.anns_by_video[vid]:
                label = self.cat2label.get(ann['category_id'], None)
                if label is None:
                    continue
                for frame_id, img in enumerate(images):
                    instance = self._parse_instance(ann, frame_id, height,
                                                    width, label)
                    if instance is None:
                        continue
                    img['instances'].append(instance)
                    self.cat_img_map[ann['category_id']].append(img['img_id'])
                    self.img_ids_with_ann.add(img['img_id'])
            data_list.append(
                dict(video_id=vid, video_length=len(images), images=images))

        if self.check_files and self._is_local_backend():
            self._check_frame_files(data_list)
        return data_list

    @staticmethod
    def _parse_instance(ann: dict, frame: int, height: int, width: int,
                        label: int) -> Optional[dict]:
        """One frame of a track -> mmdet instance, filtered like mmdet."""
        inst = frame_instance(ann, frame, height, width)
        if inst is None:
            return None
        seg, (x1, y1, w, h), area = inst
        inter_w = max(0, min(x1 + w, width) - max(x1, 0))
        inter_h = max(0, min(y1 + h, height) - max(y1, 0))
        if inter_w * inter_h == 0 or area <= 0 or w < 1 or h < 1:
            return None
        return dict(
            bbox=[x1, y1, x1 + w, y1 + h],
            bbox_label=label,
            mask=seg,
            instance_id=ann['id'],
            ignore_flag=1 if ann.get('iscrowd', False) else 0)

    def _is_local_backend(self) -> bool:
        """Frame checks only make sense for plain local paths."""
        backend_args = self.backend_args or {}
        if backend_args.get('backend', 'local') != 'local':
            return False
        prefix = self.data_prefix.get('img_path', None) or ''
        return '://' not in str(prefix)

    def _check_frame_files(self, data_list: List[dict]) -> None:
        """Fail at build time rather than in a dataloader worker hours in.

        Lists each frame folder once (fast for ~100k frames) instead of one
        ``stat`` per frame.
        """
        listings: Dict[str, Optional[set]] = {}
        missing = []
        total = 0
        for video in data_list:
            for img in video['images']:
                total += 1
                path = img['img_path']
                folder = osp.dirname(path) or '.'
                if folder not in listings:
                    try:
                        listings[folder] = set(os.listdir(folder))
                    except OSError:
                        listings[folder] = None
                names = listings[folder]
                if names is None or osp.basename(path) not in names:
                    if not osp.isfile(path):
                        missing.append(
                            (video['video_id'], img['frame_id'], path))
        if missing:
            num_videos = len({m[0] for m in missing})
            shown = '; '.join(f'video {v} frame {f}: {p}'
                              for v, f, p in missing[:5])
            more = (f'; ... and {len(missing) - 5} more'
                    if len(missing) > 5 else '')
            raise VISDataError(
                f'{self.ann_file}: {len(missing)} of {total} frame files are '
                f'missing ({num_videos} video(s); img_path prefix '
                f"{self.data_prefix.get('img_path')!r}): {shown}{more}. "
                'Check data_root/data_prefix, or pass check_files=False.')

    def filter_data(self) -> List[dict]:
        """mmdet's filter, then drop videos left without any frame.

        A frame sampler cannot draw from them, and mmdet's filter leaves
        ``images`` unfiltered (with ``video_length == 0``) when *every* frame
        of a video is filtered out.
        """
        data_list = super().filter_data()
        if self.test_mode:
            return data_list
        kept = [
            v for v in data_list
            if v['video_length'] > 0 and len(v['images']) > 0
        ]
        if len(kept) != len(data_list):
            print_log(
                f'{len(data_list) - len(kept)} video(s) without valid frames '
                'were removed', 'current')
        return kept

    @property
    def label2cat(self) -> Dict[int, Any]:
        """Label -> dataset category id (for result files)."""
        return {i: cat_id for i, cat_id in enumerate(self.cat_ids)}
