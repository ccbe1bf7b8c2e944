# Copyright (c) mmookd contributors. All rights reserved.
"""Run an online VIS model on a video, a folder of frames or a camera and
write a video with coloured masks, track ids and class names.

Users of VIS codebases ask for this more than for anything but evaluation.
Frames are processed one at a time by
:class:`mmookd.apis.StreamingVISInferencer`, so any video length fits in
memory, and the output is written as it is produced.

Examples::

    python tools/demo/video_demo.py street.mp4 configs/ookd_r50.py \\
        ookd_r50.pth --out street_vis.mp4 --out-json street.json
    python tools/demo/video_demo.py data/ytvis/valid/JPEGImages/0a49f5265b \\
        CONFIG CKPT --out vis.mp4 --fps 6 --out-masks masks/
    python tools/demo/video_demo.py 0 CONFIG CKPT --show   # camera 0

Outputs are never overwritten unless ``--force`` is given.
"""
import argparse
import colorsys
import json
import os
import os.path as osp
import sys
import tempfile
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmookd import apis  # noqa: E402
from mmookd.utils import cli  # noqa: E402

DEFAULT_FPS = 30.0


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Online video instance segmentation demo')
    parser.add_argument(
        'input', help='video file, folder of frames, or camera index (e.g. 0)')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='local checkpoint file; without it the weights are random')
    parser.add_argument('--out', help='output video (.mp4)')
    parser.add_argument(
        '--out-json', help='YouTube-VIS results JSON of the video')
    parser.add_argument(
        '--out-masks',
        help='folder for per-frame 16-bit PNG masks: pixel = track id + 1, '
        '0 = background')
    parser.add_argument(
        '--show', action='store_true', help='show the frames in a window')
    parser.add_argument(
        '--device',
        default='cuda:0' if torch.cuda.is_available() else 'cpu',
        help='device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--precision',
        choices=['fp32', 'fp16', 'bf16'],
        default='fp32',
        help='autocast dtype of the network')
    parser.add_argument(
        '--fps',
        type=float,
        help=f'output frame rate; defaults to the source\'s, else '
        f'{DEFAULT_FPS:g} (frame folders)')
    parser.add_argument(
        '--max-frames', type=int, help='stop after this many frames')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.0,
        help='only draw instances scoring above this')
    parser.add_argument(
        '--alpha', type=float, default=0.5, help='mask opacity')
    parser.add_argument(
        '--video-id', type=int, default=1, help='video_id in --out-json')
    parser.add_argument(
        '--force', action='store_true', help='overwrite existing output files')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    if not (args.out or args.out_json or args.out_masks or args.show):
        parser.error('nothing to do: give --out, --out-json, --out-masks '
                     'or --show')
    return args


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse to overwrite anything before any work is done."""
    if args.force:
        return
    for path, what in ((args.out, '--out'), (args.out_json, '--out-json')):
        if path and osp.exists(path):
            raise FileExistsError(f'{what} {path} exists already; pass '
                                  '--force to overwrite it')
    if args.out_masks and osp.isdir(args.out_masks) and os.listdir(
            args.out_masks):
        raise FileExistsError(
            f'--out-masks folder {args.out_masks} is not empty; pass '
            '--force to overwrite its files')
    if args.out_masks and osp.exists(
            args.out_masks) and not osp.isdir(args.out_masks):
        raise FileExistsError(f'--out-masks {args.out_masks} is a file')


def track_color(track_id: int) -> Tuple[int, int, int]:
    """A distinct, stable BGR colour per track id (golden-ratio hues)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_frame(frame: np.ndarray,
               result: apis.FrameResult,
               score_thr: float = 0.0,
               alpha: float = 0.5) -> np.ndarray:
    """Frame with each instance's mask, outline and ``id class score``.

    Drawn with OpenCV only: matplotlib-based visualizers make the demo
    slower than the model (a frequent complaint in VIS codebases).
    """
    canvas = frame.copy()
    keep = [i for i in range(len(result)) if result.scores[i] > score_thr]
    if not keep:
        return canvas
    masks = result.decode_masks()
    # low scores first, so the most confident instance ends up on top
    keep.sort(key=lambda i: result.scores[i])
    overlay = canvas.copy()
    for i in keep:
        overlay[masks[i].astype(bool)] = track_color(result.track_ids[i])
    canvas = cv2.addWeighted(overlay, alpha, canvas, 1 - alpha, 0)
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    for i in keep:
        color = track_color(result.track_ids[i])
        contours, _ = cv2.findContours(masks[i], cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, color, 2)
        text = (f'{result.track_ids[i]} {result.class_names[i]} '
                f'{result.scores[i]:.2f}')
        x1, y1 = (int(v) for v in result.bboxes[i][:2])
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        x1 = min(max(x1, 0), max(canvas.shape[1] - tw, 0))
        y1 = min(max(y1, th + base), canvas.shape[0])
        cv2.rectangle(canvas, (x1, y1 - th - base), (x1 + tw, y1), color, -1)
        cv2.putText(canvas, text, (x1, y1 - base), font, scale, (0, 0, 0),
                    thick, cv2.LINE_AA)
    return canvas


def write_mask_png(folder: str, result: apis.FrameResult) -> None:
    """One 16-bit PNG per frame: track id + 1 where the track is."""
    h, w = result.ori_shape
    canvas = np.zeros((h, w), np.uint16)
    masks = result.decode_masks()
    for i in np.argsort(result.scores, kind='stable'):
        canvas[masks[i].astype(bool)] = int(result.track_ids[i]) + 1
    path = osp.join(folder, f'{result.frame_id:06d}.png')
    if not cv2.imwrite(path, canvas):
        raise OSError(f'could not write {path}')


def _partial_path(out: str) -> str:
    """A new, hidden temporary file next to ``out`` with its extension (so
    FFmpeg picks the same container), renamed to ``out`` when complete: a
    crash never leaves a half-written ``out`` behind."""
    root, ext = osp.splitext(osp.basename(out))
    fd, path = tempfile.mkstemp(
        prefix=f'.{root}.partial-',
        suffix=ext,
        dir=osp.dirname(osp.abspath(out)))
    os.close(fd)
    return path


def _open_writer(path: str, fps: float, size: tuple) -> cv2.VideoWriter:
    """An mp4 writer for ``size`` = (height, width) frames."""
    h, w = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    if not writer.isOpened():
        raise OSError(f'OpenCV cannot write the video {path} (mp4v codec, '
                      f'{w}x{h} at {fps:g} fps)')
    return writer


def _publish(tmp: str, out: str, force: bool) -> None:
    """Move a finished temporary file to ``out``, checking again that
    nothing appeared there meanwhile; it gets an ordinary file's mode
    (``mkstemp`` makes it 0600, and the writer keeps the mode)."""
    if osp.exists(out) and not force:
        raise FileExistsError(f'{out} was created while the demo ran; the '
                              f'result is kept as {tmp}')
    cli.set_default_file_mode(tmp)
    os.replace(tmp, out)


def _write_json(results: list, out: str, force: bool) -> None:
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    with open(out, 'w' if force else 'x') as f:
        json.dump(results, f)


def _show(image: np.ndarray) -> bool:
    """Show a frame; False when the user pressed q or Esc."""
    try:
        cv2.imshow('mmookd video demo', image)
        key = cv2.waitKey(1)
    except cv2.error as err:
        raise RuntimeError('--show needs a display and an OpenCV build '
                           'with GUI support; use --out instead') from err
    return key & 0xFF not in (27, ord('q'))


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    check_outputs(args)
    source = apis.open_frame_source(args.input)
    model = apis.init_vis_model(
        args.config,
        args.checkpoint,
        device=args.device,
        cfg_options=args.cfg_options)
    # video-level results only when asked for: a camera stream then runs
    # for ever in constant memory
    inferencer = apis.StreamingVISInferencer(
        model,
        precision=args.precision,
        keep_video_results=bool(args.out_json))
    fps = args.fps or source.fps or DEFAULT_FPS
    total = source.num_frames or 0
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total else args.max_frames
    if args.out_masks:
        os.makedirs(args.out_masks, exist_ok=True)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)

    writer, tmp_out = None, None
    progress = ProgressBar(total)
    frames = iter(source)
    inferencer.reset()
    try:
        for frame in frames:
            if args.max_frames is not None and \
                    inferencer.num_frames >= args.max_frames:
                break
            result = inferencer(frame)
            if args.out or args.show:
                drawn = draw_frame(frame, result, args.score_thr, args.alpha)
            if args.out:
                if writer is None:
                    tmp_out = _partial_path(args.out)
                    writer = _open_writer(tmp_out, fps, frame.shape[:2])
                writer.write(drawn)
            if args.out_masks:
                write_mask_png(args.out_masks, result)
            if args.show and not _show(drawn):
                break
            progress.update()
    except KeyboardInterrupt:
        print('\ninterrupted: keeping the frames processed so far')
    except BaseException:
        if writer is not None:
            writer.release()
            writer = None
        if tmp_out and osp.exists(tmp_out):
            os.remove(tmp_out)
        raise
    finally:
        close = getattr(frames, 'close', None)
        if close is not None:
            close()
        if writer is not None:
            writer.release()
        if args.show:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
    print()
    num_frames = inferencer.num_frames
    if num_frames == 0:
        raise RuntimeError(f'no frame was read from {source.name}')
    if args.out:
        _publish(tmp_out, args.out, args.force)
        print(f'wrote {num_frames} frames at {fps:g} fps to {args.out}')
    if args.out_json:
        results = inferencer.video_results(args.video_id)
        _write_json(results, args.out_json, args.force)
        print(f'wrote {len(results)} YouTube-VIS results to '
              f'{args.out_json}')
    if args.out_masks:
        print(f'wrote {num_frames} mask PNGs to {args.out_masks}')


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
