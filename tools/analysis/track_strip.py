# Copyright (c) mmookd contributors. All rights reserved.
"""A picture of tracking: a few frames of one video, one row per model.

With ground truth (a ToyVIS / YouTube-VIS annotation file) the first row is
the ground truth, and every predicted track that overlaps a ground-truth
instance (video mask IoU, Hungarian matching, IoU >= ``--min-iou``) is drawn
with that instance's colour and number; unmatched tracks get numbers after
the ground truth's. A track drawn in two colours across a row, or an
instance that changes colour, is an identity switch.

Drawing is the demo's (``tools/demo/video_demo.py``: mask, outline,
``id class score``); frames are enlarged by ``--scale`` before drawing so
the labels stay readable on small toy frames. ``--out-video`` also writes
the last model's whole video, drawn the same way.

Examples::

    # ToyVIS long_val video 2002: ground truth, baseline, OOKD student
    python tools/analysis/track_strip.py \\
        configs/toy/ookd_r18-tiny_1xb2-toyvis_no-kd.py \\
        --checkpoints BASELINE.pth STUDENT.pth --names "IDOL (no KD)" OOKD \\
        --data-root data/toyvis --split long_val --video-id 2002 \\
        --out strip.png --out-video student.mp4
    # any video, no ground truth: the first 40 frames, 3 of them drawn
    python tools/analysis/track_strip.py CONFIG --checkpoints CKPT \\
        --names model --source street.mp4 --max-frames 40 --frames 3 \\
        --scale 0.5 --out street.jpg

Outputs are never overwritten unless ``--force`` is given.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import pycocotools.mask as mask_util

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmookd import apis  # noqa: E402
from mmookd.utils import cli, load_tool  # noqa: E402


def _load_demo():
    """``tools/demo/video_demo.py`` (its drawing and output helpers)."""
    return load_tool(
        osp.join(ROOT, 'tools/demo/video_demo.py'), 'mmookd_video_demo')


demo = _load_demo()

GT_NAME = 'ground truth'


# ----------------------------------------------------------------------
# frames, ground truth, predictions
# ----------------------------------------------------------------------
def load_video(ann_file: str, img_dir: str,
               video_id: int) -> Dict[str, object]:
    """Frames (BGR) and ground truth of one annotated video.

    Returns:
        dict: ``frames`` (list of arrays), ``gt`` (list of
        :class:`apis.FrameResult`, ids 1, 2, ... in annotation order),
        ``classes`` (names by 0-based label).
    """
    with open(ann_file) as f:
        data = json.load(f)
    videos = {v['id']: v for v in data['videos']}
    if video_id not in videos:
        raise ValueError(f'video id {video_id} is not in {ann_file} (it has '
                         f'{sorted(videos)[:10]}...)')
    video = videos[video_id]
    frames = []
    for name in video['file_names']:
        path = osp.join(img_dir, name)
        image = cv2.imread(path)
        if image is None:
            raise FileNotFoundError(f'cannot read frame {path}')
        frames.append(image)
    cats = sorted(c['id'] for c in data['categories'])
    names = {c['id']: c['name'] for c in data['categories']}
    classes = [names[c] for c in cats]
    anns = [a for a in data['annotations'] if a['video_id'] == video_id]
    h, w = frames[0].shape[:2]
    gt = []
    for t in range(len(frames)):
        ids, labels, masks = [], [], []
        for k, ann in enumerate(anns):
            seg = ann['segmentations'][t]
            if not seg:
                continue
            if isinstance(seg, dict) and isinstance(seg.get('counts'), list):
                seg = mask_util.frPyObjects(seg, h, w)
            elif isinstance(seg, list):  # polygons
                seg = mask_util.merge(mask_util.frPyObjects(seg, h, w))
            mask = mask_util.decode(seg)
            if not mask.any():
                continue
            ids.append(k + 1)
            labels.append(cats.index(ann['category_id']))
            masks.append(mask)
        gt.append(
            _frame_result(t, ids, labels, [classes[lb] for lb in labels],
                          np.ones(len(ids), np.float32), masks, (h, w)))
    return dict(frames=frames, gt=gt, classes=classes)


def _frame_result(frame_id: int, ids: Sequence[int], labels: Sequence[int],
                  names: Sequence[str], scores: np.ndarray,
                  masks: Sequence[np.ndarray],
                  shape: tuple) -> apis.FrameResult:
    """A :class:`apis.FrameResult` from dense masks (boxes from them)."""
    h, w = shape
    binary = np.stack(masks).astype(np.uint8) if len(masks) else np.zeros(
        (0, h, w), np.uint8)
    boxes = []
    for mask in binary:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(
        ), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0])
    return apis.FrameResult(
        frame_id=frame_id,
        track_ids=np.asarray(ids, np.int64),
        labels=np.asarray(labels, np.int64),
        class_names=list(names),
        scores=np.asarray(scores, np.float32),
        bboxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        masks=[],
        ori_shape=(h, w),
        binary_masks=binary)


def predict(
        config: str,
        checkpoint: str,
        frames: Sequence[np.ndarray],
        device: str = 'cpu',
        cfg_options: Optional[dict] = None,
        progress: Optional[Callable[[],
                                    None]] = None) -> List[apis.FrameResult]:
    """Per-frame tracked results (masks decoded) of a model on frames."""
    model = apis.init_vis_model(
        config, checkpoint, device=device, cfg_options=cfg_options)
    inferencer = apis.StreamingVISInferencer(model, keep_video_results=False)
    results = []
    for result in inferencer.stream(list(frames), decode_masks=True):
        results.append(result)
        if progress is not None:
            progress()
    return results


# ----------------------------------------------------------------------
# matching and colours
# ----------------------------------------------------------------------
def match_tracks(pred: Sequence[apis.FrameResult],
                 gt: Sequence[apis.FrameResult],
                 min_iou: float = 0.1) -> Dict[int, int]:
    """Predicted track id -> ground-truth id, by video mask IoU (the
    YouTube-VIS overlap: intersections and unions summed over frames),
    one-to-one (Hungarian), pairs below ``min_iou`` left unmatched."""
    from scipy.optimize import linear_sum_assignment
    inter: Dict[tuple, float] = {}
    area_p: Dict[int, float] = {}
    area_g: Dict[int, float] = {}
    for p, g in zip(pred, gt):
        pm, gm = p.decode_masks().astype(bool), g.decode_masks().astype(bool)
        for i, tid in enumerate(p.track_ids):
            area_p[int(tid)] = area_p.get(int(tid), 0) + pm[i].sum()
        for j, gid in enumerate(g.track_ids):
            area_g[int(gid)] = area_g.get(int(gid), 0) + gm[j].sum()
        for i, tid in enumerate(p.track_ids):
            for j, gid in enumerate(g.track_ids):
                key = (int(tid), int(gid))
                inter[key] = inter.get(key, 0) + (pm[i] & gm[j]).sum()
    tracks, gts = sorted(area_p), sorted(area_g)
    if not tracks or not gts:
        return {}
    iou = np.zeros((len(tracks), len(gts)))
    for a, tid in enumerate(tracks):
        for b, gid in enumerate(gts):
            i = inter.get((tid, gid), 0)
            union = area_p[tid] + area_g[gid] - i
            iou[a, b] = i / union if union else 0.0
    rows, cols = linear_sum_assignment(-iou)
    return {
        tracks[a]: gts[b]
        for a, b in zip(rows, cols) if iou[a, b] >= min_iou
    }


def display_ids(pred: Sequence[apis.FrameResult], matches: Dict[int, int],
                first_free: int) -> Dict[int, int]:
    """Track id -> the number (and so the colour) it is drawn with: its
    ground-truth instance's when matched, else ``first_free``, ... in
    order of first appearance."""
    out = dict(matches)
    nxt = first_free
    for result in pred:
        for tid in result.track_ids:
            if int(tid) not in out:
                out[int(tid)] = nxt
                nxt += 1
    return out


def relabel(result: apis.FrameResult, ids: Dict[int, int]) -> apis.FrameResult:
    """``result`` with its track ids replaced by ``ids``."""
    return apis.FrameResult(
        frame_id=result.frame_id,
        track_ids=np.asarray([ids[int(t)] for t in result.track_ids],
                             np.int64),
        labels=result.labels,
        class_names=result.class_names,
        scores=result.scores,
        bboxes=result.bboxes,
        masks=result.masks,
        ori_shape=result.ori_shape,
        binary_masks=result.decode_masks())


# ----------------------------------------------------------------------
# drawing
# ----------------------------------------------------------------------
def draw(frame: np.ndarray,
         result: apis.FrameResult,
         scale: float = 1.0,
         score_thr: float = 0.0) -> np.ndarray:
    """The demo's drawing of ``result`` on ``frame`` enlarged by
    ``scale`` (masks and boxes too)."""
    if scale != 1.0:
        h, w = frame.shape[:2]
        size = (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))
        interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        frame = cv2.resize(frame, size, interpolation=interp)
        masks = result.decode_masks()
        masks = np.stack([
            cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in masks
        ]) if len(masks) else np.zeros((0, size[1], size[0]), np.uint8)
        result = apis.FrameResult(
            frame_id=result.frame_id,
            track_ids=result.track_ids,
            labels=result.labels,
            class_names=result.class_names,
            scores=result.scores,
            bboxes=result.bboxes * scale,
            masks=[],
            ori_shape=(size[1], size[0]),
            binary_masks=masks)
    return demo.draw_frame(frame, result, score_thr=score_thr)


def _band(text: str, width: int, height: int = 24) -> np.ndarray:
    band = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(band, text, (6, height - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                (0, 0, 0), 1, cv2.LINE_AA)
    return band


def compose(rows: Sequence[Sequence[np.ndarray]],
            names: Sequence[str],
            frame_ids: Sequence[int],
            gap: int = 4) -> np.ndarray:
    """Tiles in a grid: a title band above each row, the frame number in
    each tile's corner, white gaps."""
    th, tw = rows[0][0].shape[:2]
    width = len(frame_ids) * tw + (len(frame_ids) - 1) * gap
    parts = []
    for name, tiles in zip(names, rows):
        line = []
        for k, (tile, fid) in enumerate(zip(tiles, frame_ids)):
            tile = tile.copy()
            cv2.putText(tile, f'frame {fid}', (4, th - 6),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                        cv2.LINE_AA)
            line.append(tile)
            if k + 1 < len(tiles):
                line.append(np.full((th, gap, 3), 255, np.uint8))
        parts += [_band(name, width), np.hstack(line)]
    parts.append(np.full((gap, width, 3), 255, np.uint8))
    return np.vstack(parts)


def pick_frames(num_frames: int, count: int) -> List[int]:
    """``count`` frame indices spread evenly from the first to the last."""
    count = max(1, min(count, num_frames))
    return sorted(
        {int(round(x))
         for x in np.linspace(0, num_frames - 1, count)})


def _write_image(image: np.ndarray, out: str, force: bool) -> None:
    """Write an image to a temporary file beside ``out`` and publish it
    with an ordinary file's mode (never half-written, never overwriting
    unless ``force``)."""
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    tmp = demo._partial_path(out)
    try:
        if not cv2.imwrite(tmp, image):
            raise OSError(f'OpenCV cannot write the image {out}')
        demo._publish(tmp, out, force)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def _write_video(frames: Sequence[np.ndarray], out: str, fps: float,
                 force: bool) -> None:
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    tmp = demo._partial_path(out)
    try:
        writer = demo._open_writer(tmp, fps, frames[0].shape[:2])
        for frame in frames:
            writer.write(frame)
        writer.release()
        demo._publish(tmp, out, force)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


# ----------------------------------------------------------------------
# the whole picture
# ----------------------------------------------------------------------
def make_strip(
    config: str,
    checkpoints: Sequence[str],
    names: Sequence[str],
    out: str,
    ann_file: Optional[str] = None,
    img_dir: Optional[str] = None,
    video_id: Optional[int] = None,
    source: Optional[str] = None,
    num_frames: int = 6,
    max_frames: Optional[int] = None,
    scale: float = 2.0,
    score_thr: float = 0.0,
    min_iou: float = 0.1,
    out_video: Optional[str] = None,
    fps: float = 6.0,
    device: str = 'cpu',
    cfg_options: Optional[dict] = None,
    force: bool = False,
    progress: Optional[Callable[[int, int],
                                None]] = None) -> Dict[str, object]:
    """Draw the strip (and the last model's video); see the module doc.

    Either ``ann_file`` + ``img_dir`` + ``video_id`` (ground truth first,
    matched colours) or ``source`` (any video / frame folder, no ground
    truth). ``progress(done, total)`` is called per processed frame.

    Returns:
        dict: ``frame_ids`` drawn, per model ``matches`` (track id ->
        ground-truth id), ``ids`` (track id -> drawn number), and the
        outputs ``out`` / ``out_video``.
    """
    if len(checkpoints) != len(names):
        raise ValueError(f'{len(checkpoints)} checkpoints but {len(names)} '
                         'names: give one name per checkpoint')
    for path in (out, out_video):
        cli.check_new_file(path, 'output', force)
    if isinstance(config, str) and not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    for ckpt in checkpoints:  # before any frame is read
        if not osp.isfile(ckpt):
            raise FileNotFoundError(f'checkpoint not found: {ckpt}')
    if source is not None:
        frames = []
        for frame in apis.open_frame_source(source):
            if max_frames is not None and len(frames) >= max_frames:
                break
            frames.append(frame)
        if not frames:
            raise RuntimeError(f'no frame was read from {source}')
        gt = None
    else:
        if not (ann_file and img_dir and video_id is not None):
            raise ValueError('give --source, or an annotation file, an '
                             'image folder and a video id')
        video = load_video(ann_file, img_dir, video_id)
        frames, gt = video['frames'], video['gt']
        if max_frames is not None:
            frames, gt = frames[:max_frames], gt[:max_frames]
    total = len(frames) * len(checkpoints)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    frame_ids = pick_frames(len(frames), num_frames)
    rows, row_names, info = [], [], dict(frame_ids=frame_ids, models=[])
    if gt is not None:
        rows.append([draw(frames[t], gt[t], scale) for t in frame_ids])
        row_names.append(GT_NAME)
        first_free = max([int(i) for g in gt for i in g.track_ids] + [0]) + 1
    drawn_video = None
    for k, (ckpt, name) in enumerate(zip(checkpoints, names)):
        pred = predict(config, ckpt, frames, device, cfg_options, tick)
        if gt is not None:
            matches = match_tracks(pred, gt, min_iou)
            ids = display_ids(pred, matches, first_free)
        else:
            matches = {}
            ids = display_ids(pred, {}, 0)
            ids = {t: t for t in ids}
        pred = [relabel(p, ids) for p in pred]
        rows.append(
            [draw(frames[t], pred[t], scale, score_thr) for t in frame_ids])
        row_names.append(name)
        info['models'].append(dict(name=name, matches=matches, ids=ids))
        if out_video and k == len(checkpoints) - 1:
            drawn_video = [
                draw(f, p, scale, score_thr) for f, p in zip(frames, pred)
            ]
    _write_image(compose(rows, row_names, frame_ids), out, force)
    info['out'] = out
    if drawn_video:
        _write_video(drawn_video, out_video, fps, force)
        info['out_video'] = out_video
    return info


def video_with_most_instances(ann_file: str) -> int:
    """The id of the video with the most annotated instances (the first
    of those on a tie)."""
    with open(ann_file) as f:
        data = json.load(f)
    counts = {v['id']: 0 for v in data['videos']}
    for ann in data['annotations']:
        counts[ann['video_id']] += 1
    return max(counts, key=lambda v: (counts[v], -list(counts).index(v)))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='model config (all checkpoints)')
    parser.add_argument(
        '--checkpoints', nargs='+', required=True, help='one per row')
    parser.add_argument('--names', nargs='+', required=True, help='row titles')
    parser.add_argument(
        '--data-root',
        default='data/toyvis',
        help='ToyVIS-layout root: annotations/toyvis_{split}.json, '
        '{split}/JPEGImages')
    parser.add_argument('--split', default='long_val')
    parser.add_argument(
        '--ann-file',
        help='annotation file (overrides '
        '--data-root / --split)')
    parser.add_argument(
        '--img-dir',
        help='frame folder of the annotation '
        "file's file_names")
    parser.add_argument(
        '--video-id',
        type=int,
        help='annotated video; default: the one with the most instances')
    parser.add_argument(
        '--source',
        help='a video file or frame folder instead (no ground truth row)')
    parser.add_argument(
        '--frames', type=int, default=6, help='frames in the strip')
    parser.add_argument(
        '--max-frames', type=int, help='use only the first N frames')
    parser.add_argument(
        '--scale',
        type=float,
        default=2.0,
        help='enlarge (or shrink) the frames before drawing')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.0,
        help='only draw predictions scoring above this')
    parser.add_argument('--min-iou', type=float, default=0.1)
    parser.add_argument('--out', required=True, help='the strip (.png/.jpg)')
    parser.add_argument(
        '--out-video', help='also the last model on the whole video (.mp4)')
    parser.add_argument('--fps', type=float, default=6.0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--force', action='store_true', help='overwrite the outputs')
    cli.add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    ann_file = args.ann_file or osp.join(args.data_root, 'annotations',
                                         f'toyvis_{args.split}.json')
    img_dir = args.img_dir or osp.join(args.data_root, args.split,
                                       'JPEGImages')
    video_id = args.video_id
    if args.source is None and video_id is None:
        video_id = video_with_most_instances(ann_file)
    info = make_strip(
        args.config,
        args.checkpoints,
        args.names,
        args.out,
        ann_file=ann_file,
        img_dir=img_dir,
        video_id=video_id,
        source=args.source,
        num_frames=args.frames,
        max_frames=args.max_frames,
        scale=args.scale,
        score_thr=args.score_thr,
        min_iou=args.min_iou,
        out_video=args.out_video,
        fps=args.fps,
        device=args.device,
        cfg_options=args.cfg_options,
        force=args.force)
    where = f'video {video_id}' if args.source is None else args.source
    print(f'wrote {args.out}: frames {info["frame_ids"]} of {where}')
    for model in info['models']:
        if args.source is None:
            print(f'  {model["name"]}: {len(model["ids"])} tracks, '
                  f'{len(model["matches"])} matched to ground truth')
    if info.get('out_video'):
        print(f'wrote {info["out_video"]}')
    return info


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
