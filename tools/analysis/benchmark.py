# Copyright (c) mmookd contributors. All rights reserved.
"""Speed and memory of online inference, measured, not estimated.

Almost no VIS codebase reports a measured fps, and long videos running out of
memory is among the most common complaints in their issue trackers. This tool
measures both for a config with a checkpoint or random weights, on synthetic
frames (two objects moving over a noise background) of a given size, through
the same streaming path users run
(:class:`mmookd.apis.StreamingVISInferencer`).

Latency mode (default), one row per ``--precision``:

* ``frame``: BGR array in -> tracked instances with RLE masks out (test
  transforms, data preprocessor, network, per-frame filtering, mask head,
  tracker, RLE encoding, results copied to the host);
* ``network``: the network's forward alone on a preprocessed frame;
* median / p90 / mean after ``--warmup`` frames, fps = 1000 / mean frame
  latency, host peak RSS, GPU peak memory (CUDA) and output instances per
  frame.

Memory-vs-length mode (``--video-length N [N ...]``): streams one
synthetic video per length through a fresh stream state and reports the
host RSS peak, the GPU peak and what the tracker and the video-level
assembler hold.

Examples::

    python tools/analysis/benchmark.py \\
        configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py --shape 128 192
    python tools/analysis/benchmark.py configs/ookd_r50.py ookd_r50.pth \\
        --shape 360 640 --device cuda:0 --precision fp32 fp16 --out b.json
    python tools/analysis/benchmark.py CONFIG --shape 120 160 \\
        --video-length 200 2000 --open-thresholds

Frames are fed at ``--shape`` (the config's test resize is skipped unless
``--keep-resize``), so the numbers are for that network input size.
Random weights score below the tracker's thresholds, so they output
nothing; ``--open-thresholds`` sets every score threshold to 0 so the mask
head, tracker and RLE encoding work on every query that survives the box
NMS (an upper bound of that part's cost), and the match threshold to 0 so
tracks persist over the video as a trained model's do (random embeddings
never pass IDOL's 0.5 bi-softmax threshold): the video-level assembler then
holds every track's RLE in every frame, the memory a long video really
costs. It also turns off IDOL's multi-class output, which with a zero class
threshold would list every track once per class.

Host memory columns: the largest RSS sampled after each streamed frame,
the process's RSS high-water mark when streaming ended (monotonic over the
rows, which run in increasing length) and the RSS once the video's
YouTube-VIS entries are built (they are the output, proportional to the
video's length).
"""
import argparse
import json
import os
import os.path as osp
import platform
import resource
import statistics
import sys
import time
import warnings
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import psutil
import torch
from mmengine.config import DictAction

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmookd import apis  # noqa: E402
from mmookd.utils import cli  # noqa: E402

OPEN_THRESHOLDS = {
    'model.test_cfg.select_thr': 0.0,
    'model.tracker.init_score_thr': 0.0,
    'model.tracker.addnew_score_thr': 0.0,
    'model.assembler.apply_cls_thres': 0.0,
    'model.tracker.match_score_thr': 0.0,
    'model.assembler.multi_cls': False,
}
MIB = 1024.0**2


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Per-frame latency, fps and memory of online VIS')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        'checkpoint', nargs='?', help='local checkpoint (default: random)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[360, 640],
        metavar=('H', 'W'),
        help='frame (network input) size')
    parser.add_argument(
        '--keep-resize',
        action='store_true',
        help='apply the config\'s test resize to the frames')
    parser.add_argument(
        '--frames', type=int, default=50, help='timed frames per row')
    parser.add_argument(
        '--warmup', type=int, default=10, help='untimed frames first')
    parser.add_argument(
        '--precision',
        nargs='+',
        choices=['fp32', 'fp16', 'bf16'],
        default=['fp32'],
        help='autocast dtype(s), one row each')
    parser.add_argument(
        '--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--deform-attn',
        choices=['auto', 'pytorch'],
        default='auto',
        help='pytorch: force mmcv\'s pure-PyTorch deformable attention '
        'on CUDA too (to compare with its CUDA kernel)')
    parser.add_argument(
        '--video-length',
        type=int,
        nargs='+',
        metavar='N',
        help='memory-vs-length mode: stream synthetic videos of these '
        'lengths')
    parser.add_argument(
        '--open-thresholds',
        action='store_true',
        help='all score and match thresholds 0 (random weights output '
        'nothing otherwise)')
    parser.add_argument(
        '--fast',
        action='store_true',
        help='the fast per-frame path (test_cfg.fast, issue 15)')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='with --fast: torch.compile the network (test_cfg.compile)')
    parser.add_argument(
        '--count-frames',
        type=int,
        default=2,
        help='frames over which host-device syncs, downloads and aten '
        'calls are counted with the profiler (0: do not count)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the random weights (rows of separate runs compare)')
    parser.add_argument('--out', help='also write the results as JSON')
    parser.add_argument('--force', action='store_true', help='overwrite --out')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.warmup < 0:
        parser.error('--frames must be >= 1 and --warmup >= 0')
    if args.compile and not args.fast:
        parser.error('--compile compiles the fast path\'s network: add --fast')
    if args.video_length and min(args.video_length) < 1:
        parser.error('--video-length values must be >= 1')
    return args


# ----------------------------------------------------------------------
# measurements
# ----------------------------------------------------------------------
def synthetic_frames(h: int,
                     w: int,
                     n: int,
                     seed: int = 0) -> Iterator[np.ndarray]:
    """``n`` BGR frames made on the fly (nothing buffered): two boxes
    moving in opposite directions over a fixed noise background."""
    rng = np.random.RandomState(seed)
    background = rng.randint(0, 90, (h, w, 3)).astype(np.uint8)
    bh, bw = max(h // 3, 1), max(w // 4, 1)
    span = max(w - bw, 1)
    for t in range(n):
        img = background.copy()
        x = (3 * t) % span
        img[h // 8:h // 8 + bh, x:x + bw] = (40, 200, 230)
        y = h - h // 8 - bh
        img[y:y + bh, w - bw - x:w - x] = (220, 40, 40)
        yield img


def peak_rss_bytes() -> int:
    """The process's RSS high-water mark."""
    info = psutil.Process().memory_info()
    if hasattr(info, 'peak_wset'):  # Windows
        return int(info.peak_wset)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == 'darwin' else peak * 1024)


def current_rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _reset_gpu_peak(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _gpu_peak_mib(device: torch.device) -> Optional[float]:
    if device.type != 'cuda':
        return None
    return torch.cuda.max_memory_allocated(device) / MIB


def _stats(times_ms: List[float]) -> Dict[str, float]:
    arr = np.asarray(times_ms)
    return dict(
        median_ms=float(np.median(arr)),
        p90_ms=float(np.percentile(arr, 90)),
        mean_ms=float(arr.mean()),
        min_ms=float(arr.min()))


def count_per_frame(inferencer: apis.StreamingVISInferencer, shape: List[int],
                    frames: int) -> Dict[str, float]:
    """Host-device sync points, Python-level downloads and aten calls per
    streamed frame, counted with the profiler (exact, unlike timings)."""
    from mmookd.utils.sync_count import count_syncs
    h, w = shape
    images = list(synthetic_frames(h, w, frames, seed=1))
    # a TorchFunctionMode (the download counter) would make a compiled
    # network retrace: count downloads on eager networks only
    compiled = bool(inferencer.model.test_cfg.get('compile'))
    _, report = count_syncs(
        lambda: [inferencer(img) for img in images],
        count_downloads=not compiled)
    counts = report.per(frames)
    if compiled:
        counts.pop('downloads')
    return counts


def measure_latency(inferencer: apis.StreamingVISInferencer, shape: List[int],
                    frames: int, warmup: int) -> Dict[str, Any]:
    """Time ``warmup + frames`` streamed frames, then the network alone."""
    device = inferencer.device
    h, w = shape
    inferencer.reset()
    _reset_gpu_peak(device)
    rss_max = current_rss_bytes()
    frame_ms, instances = [], []
    for i, img in enumerate(synthetic_frames(h, w, warmup + frames)):
        _sync(device)
        start = time.perf_counter()
        result = inferencer(img)
        _sync(device)
        elapsed = (time.perf_counter() - start) * 1000
        rss_max = max(rss_max, current_rss_bytes())
        if i >= warmup:
            frame_ms.append(elapsed)
            instances.append(len(result))
    # the network alone, on one preprocessed frame
    img = next(synthetic_frames(h, w, 1))
    inputs, sample = inferencer.preprocess(img)
    net_ms = []
    model = inferencer.model
    network = model.fast_path().network if getattr(
        model, 'fast', False) else model.forward_frames
    with torch.no_grad(), inferencer._autocast():
        for i in range(warmup + frames):
            _sync(device)
            start = time.perf_counter()
            network(inputs, [sample])
            _sync(device)
            if i >= warmup:
                net_ms.append((time.perf_counter() - start) * 1000)
    frame = _stats(frame_ms)
    return dict(
        input_shape=list(inputs.shape[-2:]),
        frame=frame,
        network=_stats(net_ms),
        fps=1000.0 / frame['mean_ms'],
        instances_per_frame=float(statistics.fmean(instances)),
        rss_max_mib=rss_max / MIB,
        peak_rss_mib=peak_rss_bytes() / MIB,
        gpu_peak_mib=_gpu_peak_mib(device))


def assembler_bytes(inferencer: apis.StreamingVISInferencer) -> int:
    """Bytes of RLE counts the video-level assembler holds."""
    total = 0
    for track in inferencer.state.assembler._tracks.values():
        for rle in track['rles'].values():
            total += len(rle['counts'])
    return total


def measure_video_length(inferencer: apis.StreamingVISInferencer,
                         shape: List[int], length: int) -> Dict[str, Any]:
    """Stream one synthetic ``length``-frame video through a fresh state."""
    device = inferencer.device
    h, w = shape
    _reset_gpu_peak(device)
    rss_before = current_rss_bytes()
    rss_max = rss_before
    instances = 0
    start = time.perf_counter()
    for result in inferencer.stream(synthetic_frames(h, w, length)):
        instances += len(result)
        rss_max = max(rss_max, current_rss_bytes())
    _sync(device)
    elapsed = time.perf_counter() - start
    gpu_peak = _gpu_peak_mib(device)
    peak_streaming = peak_rss_bytes()
    # the YouTube-VIS entries: a segmentation (or null) per frame each
    entries = inferencer.video_results()
    rss_results = current_rss_bytes()
    masks = sum(s is not None for e in entries for s in e['segmentations'])
    return dict(
        frames=length,
        ms_per_frame=elapsed * 1000 / length,
        rss_before_mib=rss_before / MIB,
        rss_max_mib=rss_max / MIB,
        peak_rss_mib=peak_streaming / MIB,
        rss_with_results_mib=rss_results / MIB,
        gpu_peak_mib=gpu_peak,
        live_tracks=len(inferencer.state.tracker.ids),
        kept_tracks=len(inferencer.state.assembler.track_ids),
        rle_kib=assembler_bytes(inferencer) / 1024,
        results=len(entries),
        result_masks=masks,
        instances=instances)


# ----------------------------------------------------------------------
# report
# ----------------------------------------------------------------------
def _fmt(value: Optional[float], digits: int = 1) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def latency_table(rows: List[Dict[str, Any]]) -> str:
    lines = [
        '| precision | input | frame median ms | frame p90 ms | fps | '
        'network median ms | network p90 ms | inst/frame | '
        'host peak RSS MiB | GPU peak MiB | syncs/frame | downloads/frame | '
        'aten calls/frame |', '|---|---|---|---|---|---|---|---|---|---|---|'
        '---|---|'
    ]
    for row in rows:
        if 'error' in row:
            lines.append(f"| {row['precision']} | failed: {row['error']} "
                         '| | | | | | | | | | | |')
            continue
        h, w = row['input_shape']
        counts = row.get('per_frame_counts') or {}
        lines.append(f"| {row['precision']} | {h}x{w} | "
                     f"{_fmt(row['frame']['median_ms'])} | "
                     f"{_fmt(row['frame']['p90_ms'])} | "
                     f"{_fmt(row['fps'], 2)} | "
                     f"{_fmt(row['network']['median_ms'])} | "
                     f"{_fmt(row['network']['p90_ms'])} | "
                     f"{_fmt(row['instances_per_frame'])} | "
                     f"{_fmt(row['peak_rss_mib'], 0)} | "
                     f"{_fmt(row['gpu_peak_mib'], 0)} | "
                     f"{_fmt(counts.get('syncs'))} | "
                     f"{_fmt(counts.get('downloads'))} | "
                     f"{_fmt(counts.get('aten_calls'), 0)} |")
    return '\n'.join(lines)


def length_table(rows: List[Dict[str, Any]]) -> str:
    lines = [
        '| frames | ms/frame | host RSS max streaming MiB | '
        'host peak RSS MiB | RSS with results MiB | GPU peak MiB | '
        'live tracks | kept tracks | kept RLE KiB | results | result masks '
        '|', '|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        lines.append(f"| {row['frames']} | {_fmt(row['ms_per_frame'])} | "
                     f"{_fmt(row['rss_max_mib'])} | "
                     f"{_fmt(row['peak_rss_mib'])} | "
                     f"{_fmt(row['rss_with_results_mib'])} | "
                     f"{_fmt(row['gpu_peak_mib'])} | {row['live_tracks']} "
                     f"| {row['kept_tracks']} | {_fmt(row['rle_kib'])} | "
                     f"{row['results']} | {row['result_masks']} |")
    return '\n'.join(lines)


def environment(device: torch.device) -> Dict[str, Any]:
    env = dict(
        torch=torch.__version__,
        python=platform.python_version(),
        cpu=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        device=str(device))
    if device.type == 'cuda':
        env['gpu'] = torch.cuda.get_device_name(device)
        env['cuda'] = torch.version.cuda
    return env


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    cli.check_new_file(args.out, '--out', args.force)
    if args.deform_attn == 'pytorch':
        import mmcv.ops.multi_scale_deform_attn as msda
        msda.IS_CUDA_AVAILABLE = False
    cfg_options = dict(args.cfg_options or {})
    if args.open_thresholds:
        cfg_options = {**OPEN_THRESHOLDS, **cfg_options}
    if args.fast:
        cfg_options['model.test_cfg.fast'] = True
        cfg_options['model.test_cfg.compile'] = args.compile
    torch.manual_seed(args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the random-weights warning
        model = apis.init_vis_model(
            args.config,
            args.checkpoint,
            device=args.device,
            cfg_options=cfg_options)
    pipeline = apis.frame_test_pipeline(model.cfg)
    if not args.keep_resize:
        pipeline = pipeline[:1] + [
            t for t in pipeline[1:] if 'Resize' not in t['type']
        ]
    device = next(model.parameters()).device
    report: Dict[str, Any] = dict(
        config=args.config,
        checkpoint=args.checkpoint or 'random weights',
        shape=args.shape,
        keep_resize=args.keep_resize,
        deform_attn=args.deform_attn,
        open_thresholds=args.open_thresholds,
        fast=args.fast,
        compile=args.compile,
        environment=environment(device))
    if args.video_length:
        inferencer = apis.StreamingVISInferencer(
            model, pipeline=pipeline, precision=args.precision[0])
        report['precision'] = args.precision[0]
        rows = [
            measure_video_length(inferencer, args.shape, n)
            for n in sorted(args.video_length)
        ]
        report['video_length'] = rows
        table = length_table(rows)
    else:
        rows = []
        for precision in args.precision:
            inferencer = apis.StreamingVISInferencer(
                model, pipeline=pipeline, precision=precision)
            try:
                row = measure_latency(inferencer, args.shape, args.frames,
                                      args.warmup)
                if args.count_frames:
                    with inferencer._autocast():
                        row['per_frame_counts'] = count_per_frame(
                            inferencer, args.shape, args.count_frames)
            except (RuntimeError, NotImplementedError) as err:
                msg = str(err).splitlines()[0][:120]
                row = dict(error=f'{type(err).__name__}: {msg}')
            rows.append(dict(precision=precision, **row))
        report.update(frames=args.frames, warmup=args.warmup, latency=rows)
        table = latency_table(rows)
    env = report['environment']
    print(f"\n{args.config} ({report['checkpoint']}), frames "
          f"{args.shape[0]}x{args.shape[1]}, {env['device']}"
          f"{' ' + env['gpu'] if 'gpu' in env else ''}, torch "
          f"{env['torch']}, {env['torch_threads']} thread(s)\n")
    print(table)
    if args.out:
        out_dir = osp.dirname(osp.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        with open(args.out, 'w' if args.force else 'x') as f:
            json.dump(report, f, indent=2)
        print(f'\nwrote {args.out}')
    return report


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
