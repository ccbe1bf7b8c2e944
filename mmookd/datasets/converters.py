# Copyright (c) mmookd contributors. All rights reserved.
"""Converters for native YouTube-VIS/OVIS JSON (used by the CLIs in
``tools/dataset_converters``).

* :func:`ytvis_to_cocovid` writes CocoVID for mmdet's own
  ``YouTubeVISDataset``/``BaseVideoDataset`` (e.g. to compare with mmdet).
* :func:`split_ytvis` splits a train JSON with ground truth into
  ``train_sub.json``/``val_sub.json`` by video, because the official valid
  sets have no public ground truth and local AP needs one.

Inputs are validated with :func:`mmookd.datasets.ytvis.parse_vis_json` and
are only ever read; outputs are written atomically and never overwrite an
existing file unless asked (``force``), and never the input itself.
"""
import json
import os
import os.path as osp
import random
import tempfile
from typing import Dict, List, Optional, Tuple

from mmookd.utils.cli import set_default_file_mode

from .ytvis import VISDataError, frame_instance, load_vis_json, parse_vis_json

__all__ = [
    'convert_ytvis_to_cocovid', 'ytvis_to_cocovid', 'split_vis_videos',
    'split_ytvis'
]


def convert_ytvis_to_cocovid(data: dict, ann_file: str = '<json>') -> dict:
    """Native VIS dict -> CocoVID dict (pure function).

    Images get ids 1..N in video/frame order (the ``img_id`` that
    :class:`~mmookd.datasets.YTVISDataset` assigns); each non-null frame of a
    track becomes one annotation with ``instance_id`` = the native
    annotation id and ``bbox``/``area`` computed from the mask when null.
    """
    parsed = parse_vis_json(data, ann_file)
    videos, images, annotations = [], [], []
    for video in parsed.videos:
        vid, height, width = video['id'], video['height'], video['width']
        names = video['file_names']
        videos.append(
            dict(
                id=vid,
                name=osp.dirname(names[0]) or str(vid),
                width=width,
                height=height,
                length=len(names)))
        first_img_id = len(images) + 1
        for frame_id, file_name in enumerate(names):
            images.append(
                dict(
                    id=len(images) + 1,
                    video_id=vid,
                    frame_id=frame_id,
                    file_name=file_name,
                    width=width,
                    height=height))
        for ann in parsed.anns_by_video[vid]:
            for frame_id in range(len(names)):
                inst = frame_instance(ann, frame_id, height, width)
                if inst is None:
                    continue
                seg, bbox, area = inst
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        video_id=vid,
                        image_id=first_img_id + frame_id,
                        instance_id=ann['id'],
                        category_id=ann['category_id'],
                        segmentation=seg,
                        bbox=bbox,
                        area=area,
                        iscrowd=int(ann.get('iscrowd', 0) or 0)))
    out = {k: v for k, v in data.items() if k in ('info', 'licenses')}
    out.update(
        categories=parsed.categories,
        videos=videos,
        images=images,
        annotations=annotations)
    return out


def _check_outputs(out_files: List[str],
                   in_file: str,
                   force: bool,
                   can_force: bool = True) -> None:
    """Refuse to clobber data: the input always, others unless ``force``."""
    for out_file in out_files:
        if osp.abspath(out_file) == osp.abspath(in_file) or (
                osp.exists(out_file) and osp.exists(in_file)
                and osp.samefile(out_file, in_file)):
            raise FileExistsError(
                f'refusing to write {out_file!r}: it is the input file')
        if osp.exists(out_file) and not force:
            hint = ' or pass --force' if can_force else ''
            raise FileExistsError(
                f'{out_file!r} already exists; choose another path{hint}')


def _write_json(obj: dict, out_file: str) -> None:
    """Write via a temp file + rename so no half-written JSON is left;
    the file gets an ordinary new file's mode (``mkstemp``'s is 0600)."""
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=out_dir, prefix='.' + osp.basename(out_file), suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(obj, f)
        set_default_file_mode(tmp)
        os.replace(tmp, out_file)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def ytvis_to_cocovid(ann_file: str,
                     out_file: str,
                     force: bool = False) -> Dict[str, int]:
    """Convert a native YouTube-VIS/OVIS JSON file to a CocoVID JSON file.

    Works for valid/test files without annotations. Refuses to overwrite an
    existing ``out_file`` unless ``force`` (never the input).

    Returns:
        dict: Counts of ``videos``, ``images`` and ``annotations`` written.
    """
    _check_outputs([out_file], ann_file, force)
    cocovid = convert_ytvis_to_cocovid(load_vis_json(ann_file), ann_file)
    _write_json(cocovid, out_file)
    return {k: len(cocovid[k]) for k in ('videos', 'images', 'annotations')}


def split_vis_videos(data: dict,
                     val_ratio: float = 0.1,
                     num_val: Optional[int] = None,
                     seed: int = 0,
                     ann_file: str = '<json>') -> Tuple[dict, dict]:
    """Split a native VIS dict with ground truth into (train, val) by video.

    Videos are chosen with ``random.Random(seed)`` (reproducible); both
    parts keep the original order and all other top-level keys.
    """
    parsed = parse_vis_json(data, ann_file)
    if not parsed.has_annotations:
        raise VISDataError(
            f'{ann_file}: has no annotations; split a train JSON with ground '
            'truth (the official valid/test sets have none)')
    num_videos = len(parsed.videos)
    if num_videos < 2:
        raise VISDataError(f'{ann_file}: needs at least 2 videos to split, '
                           f'has {num_videos}')
    if num_val is None:
        if not 0 < val_ratio < 1:
            raise ValueError(f'val_ratio must be in (0, 1), got {val_ratio}')
        num_val = int(round(num_videos * val_ratio))
    num_val = min(max(int(num_val), 1), num_videos - 1)
    ids = [v['id'] for v in parsed.videos]
    val_ids = set(random.Random(seed).sample(ids, num_val))

    def subset(keep_val: bool) -> dict:
        keep = {i for i in ids if (i in val_ids) == keep_val}
        out = {
            k: v
            for k, v in data.items() if k not in ('videos', 'annotations')
        }
        out['videos'] = [v for v in data['videos'] if v['id'] in keep]
        out['annotations'] = [
            a for a in data['annotations'] if a['video_id'] in keep
        ]
        return out

    return subset(False), subset(True)


def split_ytvis(ann_file: str,
                out_dir: str,
                val_ratio: float = 0.1,
                num_val: Optional[int] = None,
                seed: int = 0) -> Tuple[str, str]:
    """Write ``train_sub.json`` and ``val_sub.json`` into ``out_dir``.

    Never overwrites: fails before writing anything if either exists.

    Returns:
        tuple[str, str]: The train and val file paths.
    """
    train_file = osp.join(out_dir, 'train_sub.json')
    val_file = osp.join(out_dir, 'val_sub.json')
    _check_outputs([train_file, val_file],
                   ann_file,
                   force=False,
                   can_force=False)
    train, val = split_vis_videos(
        load_vis_json(ann_file), val_ratio, num_val, seed, ann_file=ann_file)
    _write_json(train, train_file)
    _write_json(val, val_file)
    return train_file, val_file
