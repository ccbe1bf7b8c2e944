# Copyright (c) mmookd contributors. All rights reserved.
"""Validate a whole YouTube-VIS/OVIS dataset up front (read only).

:class:`~mmookd.datasets.YTVISDataset` checks what is cheap at load time
and stops at the first problem; a frame that does not decode is only found
when a worker reaches it. :func:`check_vis_dataset` instead looks at
everything and collects *all* problems into a :class:`CheckReport`: every
frame exists, decodes (the same way :class:`LoadVISFrame` does) and has the
video's size; every mask decodes and matches its ``areas`` entry (exactly
for RLE) and its bbox (within a pixel); paths stay inside the
image folder; ids are unique and referenced ids exist. Used by
``tools/misc/check_dataset.py``. Nothing is written.
"""
import math
import os.path as osp
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pycocotools.mask as maskUtils

from .transforms.loading import decode_frame
from .ytvis import (
    VIS_METAINFOS,
    _is_number,
    _video_desc,
    bbox_problem,
    file_name_problem,
    load_vis_json,
    segmentation_problem,
)

__all__ = [
    'PROBLEM_KINDS', 'Problem', 'CheckReport', 'check_vis_dataset',
    'rle_counts'
]

# kind -> what it means, per severity. Errors make the dataset refuse to
# load, fail in training or train on wrong targets; warnings are odd but
# handled.
_ERROR_KINDS = dict(
    structure='malformed JSON structure',
    duplicate_id='duplicate video / annotation / category id',
    unknown_id='annotation references an unknown video or category',
    category_names='classes of --version missing from the categories',
    empty_video='video without frames',
    frame_count="'length' or a per-frame list disagrees with 'file_names'",
    bad_path='frame path absolute or outside the image folder',
    missing_frame='frame file missing',
    bad_frame='frame file does not decode (corrupt or truncated)',
    frame_size='frame size differs from the video size',
    bad_mask=('segmentation does not decode (garbage RLE, wrong size, bad '
              'polygon)'),
    bad_bbox='bbox malformed or of negative size',
    area_mismatch="mask area differs from 'areas'",
    bbox_mismatch='bbox differs from the mask box',
)
_WARNING_KINDS = dict(
    all_null_annotation=('annotation null in every frame (the dataset '
                         'ignores it)'),
    empty_mask='non-null mask without pixels',
    null_mismatch=('bbox or area given where the mask is null, or null '
                   'where it is not'),
    video_without_annotations=('video without annotations in a split with '
                               'annotations'),
    duplicate_frame='frame file listed more than once',
)


def _with_severity(severity: str,
                   kinds: Dict[str, str]) -> Dict[str, Tuple[str, str]]:
    return {kind: (severity, what) for kind, what in kinds.items()}


# kind -> (severity, what it means); errors first, then warnings
PROBLEM_KINDS: Dict[str, Tuple[str, str]] = {
    **_with_severity('error', _ERROR_KINDS),
    **_with_severity('warning', _WARNING_KINDS)
}


@dataclass
class Problem:
    """One finding; ``message`` names the file (and video, frame, ...)."""
    kind: str
    message: str

    @property
    def severity(self) -> str:
        return PROBLEM_KINDS[self.kind][0]


@dataclass
class CheckReport:
    """All findings of :func:`check_vis_dataset` plus what was looked at."""
    ann_file: str
    img_root: str
    num_videos: int = 0
    num_frames: int = 0
    num_annotations: int = 0
    num_masks: int = 0
    frames_decoded: int = 0
    problems: List[Problem] = field(default_factory=list)

    @property
    def errors(self) -> List[Problem]:
        return [p for p in self.problems if p.severity == 'error']

    @property
    def warnings(self) -> List[Problem]:
        return [p for p in self.problems if p.severity == 'warning']

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def counts(self) -> Dict[str, int]:
        """Problems per kind, in :data:`PROBLEM_KINDS` order."""
        found = Counter(p.kind for p in self.problems)
        return {k: found[k] for k in PROBLEM_KINDS if found[k]}

    def to_dict(self, max_examples: Optional[int] = None) -> dict:
        out = asdict(self)
        out.pop('problems')
        out['ok'] = self.ok
        out['counts'] = self.counts()
        out['problems'] = {
            kind: [p.message for p in self.problems
                   if p.kind == kind][:max_examples]
            for kind in out['counts']
        }
        return out

    def format(self, max_examples: int = 5) -> str:
        """Human report: totals, then each kind with its first examples."""
        lines = [
            f'dataset {self.ann_file} (frames under {self.img_root})',
            f'  {self.num_videos} videos, {self.num_frames} frames '
            f'({self.frames_decoded} decoded), {self.num_annotations} '
            f'annotations, {self.num_masks} masks'
        ]
        for kind, num in self.counts().items():
            severity, what = PROBLEM_KINDS[kind]
            lines.append(f'{severity} {kind}: {num} x {what}')
            examples = [p.message for p in self.problems if p.kind == kind]
            for message in examples[:max_examples]:
                lines.append(f'    {message}')
            if num > max_examples:
                lines.append(f'    ... and {num - max_examples} more')
        num_err, num_warn = len(self.errors), len(self.warnings)
        if num_err:
            lines.append(f'FAILED: {num_err} error(s), {num_warn} warning(s)')
        else:
            lines.append(f'OK: no errors ({num_warn} warning(s))')
        return '\n'.join(lines)


# largest difference (pixels) of a bbox side from the mask's tight box
_BBOX_TOL = 1.0


def rle_counts(counts: Any) -> List[int]:
    """Run lengths of an RLE ``counts`` (list, or compressed string).

    A pure-Python port of pycocotools' ``rleFrString``, which does not
    validate: garbage decodes to garbage and ``decode`` may then write past
    the mask. Raises ValueError for characters outside the alphabet or a
    string ending inside a count; sums are checked by the caller.
    """
    if isinstance(counts, list):
        return counts
    if isinstance(counts, bytes):
        counts = counts.decode('ascii', errors='replace')
    if not isinstance(counts, str):
        raise ValueError(f'counts of type {type(counts).__name__}')
    out: List[int] = []
    pos, num = 0, len(counts)
    while pos < num:
        value, shift, more = 0, 0, True
        while more:
            if pos >= num:
                raise ValueError('the string ends inside a count')
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(
                    f'character {counts[pos]!r} at {pos} is not in the '
                    'compressed RLE alphabet')
            value |= (c & 0x1f) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    return out


def _polygon_problem(seg: list) -> Optional[str]:
    for poly in seg:
        if not isinstance(poly, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v) for v in poly):
            return 'polygon must be a list of numbers'
        if len(poly) < 6 or len(poly) % 2:
            return (f'polygon with {len(poly)} coordinates (needs an even '
                    'number, at least 6)')
    return None if seg else 'empty polygon list'


def _mask_stats(seg: Any, height: int,
                width: int) -> Tuple[Optional[str], float, list, float]:
    """``(problem, area, [x1, y1, x2, y2], area tolerance)`` of a mask."""
    problem = segmentation_problem(seg, height, width)
    if problem is not None:
        return problem, 0.0, [], 0.0
    if isinstance(seg, list):
        problem = _polygon_problem(seg)
        if problem is not None:
            return problem, 0.0, [], 0.0
        rle = maskUtils.merge(maskUtils.frPyObjects(seg, height, width))
        # polygon area depends on how boundary pixels are rasterised
        tol = 1.0 + 0.5 * sum(
            float(
                np.linalg.norm(
                    np.diff(
                        np.array(p, dtype=np.float64).reshape(-1, 2),
                        axis=0,
                        append=np.array(p[:2], dtype=np.float64)[None]),
                    axis=1).sum()) for p in seg)
    else:
        try:
            counts = rle_counts(seg['counts'])
        except ValueError as e:
            return f'RLE counts do not decode: {e}', 0.0, [], 0.0
        if any(c < 0 for c in counts) or sum(counts) != height * width:
            return (f'RLE counts decode to {len(counts)} runs summing to '
                    f'{sum(counts)} (negative runs: '
                    f'{sum(c < 0 for c in counts)}), not height * width = '
                    f'{height * width}'), 0.0, [], 0.0
        rle = maskUtils.frPyObjects(
            dict(size=[height, width], counts=counts), height, width)
        tol = 0.0
    area = float(maskUtils.area(rle))
    x, y, w, h = maskUtils.toBbox(rle).tolist()
    return None, area, [x, y, x + w, y + h], tol


def _check_annotation(ann: dict, video: dict, ann_file: str,
                      problems: List[Problem]) -> int:
    """Masks, areas and boxes of one track; returns its number of masks."""
    height, width = video['height'], video['width']
    head = f"{ann_file}: {_video_desc(video)}, annotation {ann['id']}"
    segs = ann['segmentations']
    bboxes = ann.get('bboxes') or [None] * len(segs)
    areas = ann.get('areas') or [None] * len(segs)
    if all(s is None for s in segs):
        problems.append(
            Problem('all_null_annotation',
                    f'{head}: null in every frame (ignored by the dataset)'))
    num = 0
    for f, (seg, bbox, area) in enumerate(zip(segs, bboxes, areas)):

        def report(kind: str, text: str) -> None:
            problems.append(Problem(kind, f'{head}, frame {f}: {text}'))

        problem = bbox_problem(bbox)
        if problem is not None:
            report('bad_bbox', problem)
        if area is not None and not (_is_number(area) and area >= 0):
            report('bad_bbox', f'area must be a number >= 0 or null, got '
                   f'{area!r}')
        if seg is None:
            if bbox is not None or area is not None:
                report(
                    'null_mismatch', f'mask is null but bbox {bbox} / '
                    f'area {area} are not')
            continue
        num += 1
        if (ann.get('bboxes') and bbox is None) or (ann.get('areas')
                                                    and area is None):
            report('null_mismatch', 'mask is given but its bbox or area is '
                   'null')
        problem, mask_area, box, tol = _mask_stats(seg, height, width)
        if problem is not None:
            report('bad_mask', problem)
            continue
        if mask_area == 0:
            report('empty_mask', 'mask has no pixels')
            continue
        if _is_number(area) and abs(area - mask_area) > tol:
            report(
                'area_mismatch', f'areas[{f}] is {area} but the mask '
                f'has {mask_area:g} pixels')
        if bbox is not None and bbox_problem(bbox) is None:
            given = [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]
            if max(abs(a - b) for a, b in zip(given, box)) > _BBOX_TOL:
                report(
                    'bbox_mismatch', f'bbox {bbox} (x, y, w, h) but the '
                    f'mask spans [{box[0]:g}, {box[1]:g}, '
                    f'{box[2] - box[0]:g}, {box[3] - box[1]:g}]')
    return num


def _check_frames(video: dict, img_root: str) -> Tuple[List[Problem], int]:
    """Every frame exists, decodes and has the video's size."""
    problems: List[Problem] = []
    decoded = 0
    vdesc = _video_desc(video)
    for f, name in enumerate(video['file_names']):
        if file_name_problem(name) is not None:
            continue  # reported with the JSON; never read outside the root
        path = osp.join(img_root, name)
        where = f'({vdesc}, frame {f})'
        try:
            with open(path, 'rb') as fp:
                img_bytes = fp.read()
        except FileNotFoundError:
            problems.append(
                Problem('missing_frame', f'{path}: frame file missing '
                        f'{where}'))
            continue
        except OSError as e:
            problems.append(
                Problem('bad_frame',
                        f'{path}: cannot read frame {where}: {e}'))
            continue
        img, why = decode_frame(img_bytes)
        if img is None:
            problems.append(
                Problem('bad_frame',
                        f'{path}: cannot decode frame {where}: {why}'))
            continue
        decoded += 1
        if tuple(img.shape[:2]) != (video['height'], video['width']):
            problems.append(
                Problem(
                    'frame_size', f'{path}: frame is {img.shape[1]}x'
                    f'{img.shape[0]} (w x h) but the video is '
                    f"{video['width']}x{video['height']} {where}"))
    return problems, decoded


def _check_video(
    task: Tuple[dict, List[dict], str, str, bool]
) -> Tuple[List[Problem], int, int]:
    """Worker: frames and annotations of one video."""
    video, anns, ann_file, img_root, check_frames = task
    problems: List[Problem] = []
    decoded = 0
    if check_frames:
        problems, decoded = _check_frames(video, img_root)
    num_masks = 0
    for ann in anns:
        num_masks += _check_annotation(ann, video, ann_file, problems)
    return problems, decoded, num_masks


def _valid_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_vis_dataset(ann_file: str,
                      img_root: str,
                      version: Optional[str] = None,
                      workers: int = 0,
                      check_frames: bool = True) -> CheckReport:
    """Check a native YouTube-VIS/OVIS dataset; never modifies it.

    Args:
        ann_file (str): The native JSON.
        img_root (str): Folder the ``file_names`` are relative to (the
            configs' ``data_prefix.img_path``).
        version (str, optional): '2019', '2021', '2022' or 'ovis': also
            check that the preset's class names are categories of the file.
        workers (int): Processes for frames and masks (0: this process).
        check_frames (bool): Read and decode every frame. Defaults to True.

    Returns:
        CheckReport: ``report.ok`` is False when any error was found.

    Raises:
        VISDataError: The annotation file is missing or not valid JSON.
    """
    report = CheckReport(ann_file=ann_file, img_root=img_root)
    problems = report.problems
    data = load_vis_json(ann_file)

    def add(kind: str, message: str) -> None:
        problems.append(Problem(kind, f'{ann_file}: {message}'))

    for key in ('videos', 'categories'):
        if not isinstance(data.get(key), list):
            add(
                'structure', f'top-level {key!r} must be a list, got '
                f'{type(data.get(key)).__name__}')
    anns = data.get('annotations')
    if anns is None:
        anns = []
    if not isinstance(anns, list):
        add('structure', "top-level 'annotations' must be a list")
        anns = []
    if problems:
        return report

    categories = set()
    for i, cat in enumerate(data['categories']):
        if not isinstance(cat, dict) or 'id' not in cat or 'name' not in cat:
            add('structure', f'category #{i} needs "id" and "name"')
        elif cat['id'] in categories:
            add('duplicate_id', f"duplicate category id {cat['id']}")
        else:
            categories.add(cat['id'])
    if version is not None:
        key = str(version).lower()
        if key not in VIS_METAINFOS:
            raise ValueError(f'unknown version {version!r}; choose one of '
                             f'{sorted(VIS_METAINFOS)}')
        names = {
            c.get('name')
            for c in data['categories'] if isinstance(c, dict)
        }
        missing = [n for n in VIS_METAINFOS[key]['classes'] if n not in names]
        if missing:
            add(
                'category_names', f'{len(missing)} class(es) of version '
                f'{version} are not categories of this file: {missing[:10]}')

    videos: Dict[Any, dict] = {}
    seen_files: Dict[str, Any] = {}
    for i, video in enumerate(data['videos']):
        if not isinstance(video, dict) or not all(
                k in video for k in ('id', 'width', 'height', 'file_names')):
            add(
                'structure', f'video #{i} needs "id", "width", "height" and '
                '"file_names"')
            continue
        vdesc = _video_desc(video)
        if not (_valid_size(video['width']) and _valid_size(video['height'])):
            add(
                'structure', f'{vdesc}: width/height must be positive ints, '
                f"got {video['width']!r}/{video['height']!r}")
            continue
        if video['id'] in videos:
            add(
                'duplicate_id', f"duplicate video id {video['id']} "
                f"({_video_desc(videos[video['id']])} and {vdesc})")
            continue
        names = video['file_names']
        if not isinstance(names, list) or not names:
            add('empty_video', f'{vdesc} has no frames')
            continue
        length = video.get('length')
        if length is not None and length != len(names):
            add(
                'frame_count', f"{vdesc}: 'length' is {length} but "
                f"'file_names' lists {len(names)} frames")
        for f, name in enumerate(names):
            problem = file_name_problem(name)
            if problem is not None:
                add('bad_path', f"{vdesc}: 'file_names'[{f}] {problem}")
            elif name in seen_files:
                add(
                    'duplicate_frame', f'{vdesc}, frame {f}: {name!r} is '
                    f'also a frame of video {seen_files[name]}')
            else:
                seen_files[name] = video['id']
        videos[video['id']] = video
        report.num_videos += 1
        report.num_frames += len(names)

    anns_by_video: Dict[Any, List[dict]] = {vid: [] for vid in videos}
    ann_ids = set()
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or not all(
                k in ann
                for k in ('id', 'video_id', 'category_id', 'segmentations')):
            add(
                'structure', f'annotation #{i} needs "id", "video_id", '
                '"category_id" and "segmentations"')
            continue
        aid, vid = ann['id'], ann['video_id']
        if aid in ann_ids:
            add('duplicate_id', f'duplicate annotation id {aid} (video {vid})')
            continue
        ann_ids.add(aid)
        report.num_annotations += 1
        if vid not in videos:
            add('unknown_id', f'annotation {aid}: unknown video id {vid}')
            continue
        vdesc = _video_desc(videos[vid])
        if ann['category_id'] not in categories:
            add(
                'unknown_id', f'{vdesc}, annotation {aid}: category id '
                f"{ann['category_id']} is not in 'categories'")
        length = len(videos[vid]['file_names'])
        bad_lists = [
            key for key in ('segmentations', 'bboxes', 'areas')
            if (ann.get(key) is not None or key == 'segmentations') and (
                not isinstance(ann.get(key), list) or len(ann[key]) != length)
        ]
        if bad_lists:
            add(
                'frame_count', f'{vdesc}, annotation {aid}: {bad_lists} '
                f'do not have one entry per frame ({length})')
            continue
        anns_by_video[vid].append(ann)

    if anns:
        for vid, video_anns in anns_by_video.items():
            if not video_anns:
                add('video_without_annotations',
                    f'{_video_desc(videos[vid])} has no annotations')

    tasks = [(video, anns_by_video[vid], ann_file, img_root, check_frames)
             for vid, video in videos.items()]
    if workers and workers > 1 and len(tasks) > 1:
        with Pool(workers) as pool:
            results = pool.map(_check_video, tasks, chunksize=4)
    else:
        results = [_check_video(task) for task in tasks]
    for found, decoded, num_masks in results:
        problems.extend(found)
        report.frames_decoded += decoded
        report.num_masks += num_masks
    return report
