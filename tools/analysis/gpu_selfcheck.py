# Copyright (c) mmookd contributors. All rights reserved.
"""Everything a CUDA machine must prove for issue 15, in one call.

Writes ``<out>/gpu_selfcheck.json`` and ``<out>/gpu_selfcheck.md``:

1. **deformable attention**: IDOL's outputs with mmcv's CUDA kernel (the
   ``mmookd::ms_deform_attn`` op) against mmcv's PyTorch formulation, max
   differences against the stated tolerance;
2. **training**: one full-size training iteration each of IDOL, the
   offline teacher and OOKD, with AMP (fp16 autocast + GradScaler) on CUDA;
3. **speed**: per-frame latency and fps at ``--shape`` for fp32 and fp16,
   reference path vs fast path vs fast path with the compiled network,
   with syncs / downloads / aten calls per frame, and mmdet's
   Deformable-DETR network in the same run;
4. **memory against video length**: GPU and host peaks streaming
   ``--lengths`` frames (200 and 2,000 by default) through the fast path.

On a CPU it runs the same code at tiny sizes (``--tiny``: toy configs,
64x96 frames, short videos), which the test suite does. On the project's
CUDA machines (Python 3.12, torch with CUDA, no OpenMMLab installed), run
it through ``tools/analysis/gpu_selfcheck.sh``, which installs the carried
wheels and builds mmcv 2.1.0's CUDA ops first.

Example::

    python tools/analysis/gpu_selfcheck.py --out work_dirs/selfcheck
    python tools/analysis/gpu_selfcheck.py --tiny --out /tmp/selfcheck

The two files of an earlier run are never overwritten unless ``--force`` is
given.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import platform
import sys
import time
import traceback
import warnings
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)


def _load_cli() -> Any:
    """``mmookd.utils.cli`` (standard library only) from its file, without
    importing ``mmookd``: a broken OpenMMLab install must only fail the
    sections that need it, and still give a report."""
    name = '_mmookd_cli_standalone'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, osp.join(ROOT, 'mmookd', 'utils', 'cli.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


cli = _load_cli()

FULL = dict(
    idol='configs/idol/idol_r50_8xb4-12k_youtubevis2021.py',
    teacher='configs/teacher/vita-teacher_r50_8xb2-20k_youtubevis2021.py',
    ookd='configs/ookd_r50.py')
TINY = dict(
    idol='configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py',
    teacher='configs/toy/vita-teacher_r18-tiny_1xb2-toyvis.py',
    ookd='configs/toy/ookd_r18-tiny_1xb2-toyvis.py')
OPEN_THRESHOLDS = {
    'model.test_cfg.select_thr': 0.0,
    'model.tracker.init_score_thr': 0.0,
    'model.tracker.addnew_score_thr': 0.0,
    'model.tracker.match_score_thr': 0.0,
    'model.assembler.apply_cls_thres': 0.0,
    'model.assembler.multi_cls': False,
}
# fp32 kernels summing in another order: logits agree to about 1e-4
ATTN_TOLERANCE = 1e-3


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='CUDA self-check, issue 15')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--force',
        action='store_true',
        help='overwrite the report of an earlier run in --out')
    parser.add_argument(
        '--tiny', action='store_true', help='toy configs, tiny sizes')
    parser.add_argument(
        '--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--shape', type=int, nargs=2, default=None)
    parser.add_argument('--frames', type=int, default=None)
    parser.add_argument('--lengths', type=int, nargs='+', default=None)
    parser.add_argument(
        '--skip',
        nargs='*',
        default=[],
        choices=['attention', 'training', 'speed', 'memory'])
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    args.configs = TINY if args.tiny else FULL
    args.shape = args.shape or ([64, 96] if args.tiny else [360, 640])
    args.frames = args.frames or (2 if args.tiny else 50)
    args.lengths = args.lengths or ([3, 6] if args.tiny else [200, 2000])
    return args


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _build(config: str, device: str, options: Optional[dict] = None) -> Any:
    from mmookd import apis
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return apis.init_vis_model(
            osp.join(ROOT, config), device=device, cfg_options=options)


# ----------------------------------------------------------------------
# 1. CUDA vs PyTorch deformable attention
# ----------------------------------------------------------------------
def check_attention(args: argparse.Namespace) -> Dict[str, Any]:
    """IDOL's network with the op (CUDA kernel on CUDA) vs mmcv's
    reference module with its PyTorch formulation forced."""
    import mmcv.ops.multi_scale_deform_attn as msda

    from mmookd.apis import StreamingVISInferencer
    model = _build(args.configs['idol'], args.device)
    inferencer = StreamingVISInferencer(
        model, pipeline=[dict(type='LoadImageFromNDArray')])
    h, w = args.shape
    img = np.random.RandomState(0).randint(0, 255, (h, w, 3), np.uint8)
    inputs, sample = inferencer.preprocess(img)
    with torch.no_grad():
        kernel = model.fast_path().network(inputs, [sample])
        saved = msda.IS_CUDA_AVAILABLE
        msda.IS_CUDA_AVAILABLE = False  # mmcv's module: PyTorch path
        try:
            pytorch = model.forward_frames(inputs, [sample])
        finally:
            msda.IS_CUDA_AVAILABLE = saved
    diffs = {
        key: float((kernel[key].float() - pytorch[key].float()).abs().max())
        for key in ('cls_scores', 'bbox_preds', 'embeds', 'mask_feats')
    }
    result = dict(
        kernel='mmcv CUDA' if inputs.is_cuda else 'PyTorch (CPU)',
        max_abs_diff=diffs,
        tolerance=ATTN_TOLERANCE,
        passed=max(diffs.values()) <= ATTN_TOLERANCE)
    if inputs.is_cuda:  # does fp16 hold? probabilities and boxes vs fp32
        with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16):
            half = model.fast_path().network(inputs, [sample])
        result['fp16_vs_fp32_max_abs_diff'] = dict(
            class_probs=float(
                (half['cls_scores'].float().sigmoid() -
                 kernel['cls_scores'].float().sigmoid()).abs().max()),
            boxes=float((half['bbox_preds'].float() -
                         kernel['bbox_preds'].float()).abs().max()))
    return result


# ----------------------------------------------------------------------
# 2. one training iteration each, with AMP
# ----------------------------------------------------------------------
def synthetic_clip(num_frames: int, hw: List[int], num_classes: int,
                   key_ref: bool) -> dict:
    """A packed clip: two rectangles moving right on noise, with GT."""
    from mmdet.structures import DetDataSample, TrackDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = hw
    rng = np.random.RandomState(0)
    background = rng.randint(0, 80, (3, h, w)).astype(np.uint8)
    boxes0 = [(w // 16, h // 8, w // 3, h // 2),
              (w // 2, h // 2, w - w // 8, h - h // 8)]
    frames, samples = [], []
    for t in range(num_frames):
        img = background.copy()
        masks, boxes = [], []
        for i, (x1, y1, x2, y2) in enumerate(boxes0):
            x1, x2 = x1 + 3 * t, x2 + 3 * t
            img[:, y1:y2, x1:x2] = 60 + 90 * i
            mask = np.zeros((h, w), np.uint8)
            mask[y1:y2, x1:x2] = 1
            masks.append(mask)
            boxes.append([x1, y1, x2, y2])
        frames.append(torch.from_numpy(img))
        sample = DetDataSample()
        sample.set_metainfo(
            dict(
                img_id=t,
                frame_id=t,
                video_id=0,
                img_shape=(h, w),
                ori_shape=(h, w),
                scale_factor=(1.0, 1.0),
                video_length=num_frames,
                ori_video_length=num_frames))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.tensor([1, 2 % num_classes]),
            masks=BitmapMasks(np.stack(masks), h, w),
            instances_ids=torch.tensor([1, 2]))
        samples.append(sample)
    track = TrackDataSample()
    track.video_data_samples = samples
    if key_ref:
        track.set_metainfo(
            dict(
                key_frames_inds=[0],
                ref_frames_inds=list(range(1, num_frames))))
    return dict(inputs=[torch.stack(frames)], data_samples=[track])


def train_iteration(name: str, config: str, args: argparse.Namespace,
                    num_frames: int) -> Dict[str, Any]:
    """Build ``config``'s model (random weights), run one AMP step."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(osp.join(ROOT, config))
    init_default_scope('mmdet')
    model_cfg = cfg.model
    if 'online_checkpoint' in model_cfg:
        model_cfg.online_checkpoint = None
    if 'teacher' in model_cfg:
        model_cfg.teacher.checkpoint = None
        model_cfg.teacher.cfg_options = dict(online_checkpoint=None)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
        model.init_weights()
    device = torch.device(args.device)
    model = model.to(device).train()
    num_classes = getattr(getattr(model, 'head', None), 'num_classes', 40)
    clip = synthetic_clip(
        num_frames, args.shape, num_classes, key_ref=name != 'teacher')
    data = model.data_preprocessor(clip, training=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-5)
    amp = device.type == 'cuda'
    scaler = torch.amp.GradScaler('cuda') if amp else None
    autocast = torch.autocast('cuda', dtype=torch.float16) if amp \
        else nullcontext()
    if amp:
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    with autocast:
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    if amp:
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()
    else:
        loss.backward()
        optim.step()
    _sync(device)
    return dict(
        config=config,
        amp='fp16 autocast + GradScaler' if amp else 'none (CPU)',
        loss=float(loss),
        finite=bool(torch.isfinite(loss)),
        seconds=time.perf_counter() - start,
        gpu_peak_mib=torch.cuda.max_memory_allocated(device) /
        2**20 if amp else None)


# ----------------------------------------------------------------------
# 3. speed; 4. memory against video length
# ----------------------------------------------------------------------
def check_speed(args: argparse.Namespace) -> List[Dict[str, Any]]:
    from benchmark import count_per_frame, measure_latency
    from fast_path_benchmark import build_ddetr, ddetr_forward, time_call

    from mmookd.apis import StreamingVISInferencer
    rows = []
    precisions = ['fp32', 'fp16'] if 'cuda' in args.device else ['fp32']
    paths = [('reference', {}), ('fast', dict(fast=True)),
             ('fast + compiled', dict(fast=True, compile=True))]
    if args.tiny:  # inductor's CPU compile takes minutes: capture only
        paths[2] = ('fast + compiled',
                    dict(fast=True, compile=dict(backend='aot_eager')))
    model = _build(args.configs['idol'], args.device, OPEN_THRESHOLDS)
    warmup = 1 if args.tiny else 10
    for precision in precisions:
        for name, test_cfg in paths:
            model.test_cfg.update(fast=False, compile=False)
            model.test_cfg.update(test_cfg)
            model._fast_path = None
            inferencer = StreamingVISInferencer(
                model,
                pipeline=[dict(type='LoadImageFromNDArray')],
                precision=precision)
            row = dict(path=name, precision=precision)
            try:
                row.update(
                    measure_latency(inferencer, args.shape, args.frames,
                                    warmup))
                with inferencer._autocast():
                    row['per_frame_counts'] = count_per_frame(
                        inferencer, args.shape, 2)
            except Exception as err:  # a row fails, the others run
                row['error'] = f'{type(err).__name__}: {err}'[:300]
            inferencer.reset()
            rows.append(row)
    model.test_cfg.update(fast=False, compile=False)
    ddetr_cfg = 'mmdet::deformable_detr/' \
        'deformable-detr-refine_r50_16xb2-50e_coco.py'
    if not args.tiny:
        inferencer = StreamingVISInferencer(
            model, pipeline=[dict(type='LoadImageFromNDArray')])
        h, w = args.shape
        img = np.random.RandomState(0).randint(0, 255, (h, w, 3), np.uint8)
        inputs, sample = inferencer.preprocess(img)
        ddetr = build_ddetr(ddetr_cfg, inputs.device)
        for precision, dtype in (('fp32', None), ('fp16', torch.float16)):
            ctx = torch.autocast('cuda', dtype=dtype) if dtype else \
                nullcontext()
            with ctx:
                ms = time_call(lambda: ddetr_forward(ddetr, inputs, sample),
                               inputs.device, args.frames, 10)
            rows.append(
                dict(
                    path='mmdet Deformable-DETR network',
                    precision=precision,
                    network=dict(median_ms=ms)))
    return rows


def check_memory(args: argparse.Namespace) -> List[Dict[str, Any]]:
    from benchmark import measure_video_length

    from mmookd.apis import StreamingVISInferencer
    options = dict(OPEN_THRESHOLDS)
    options['model.test_cfg.fast'] = True
    model = _build(args.configs['idol'], args.device, options)
    inferencer = StreamingVISInferencer(
        model, pipeline=[dict(type='LoadImageFromNDArray')])
    return [
        measure_video_length(inferencer, args.shape, n)
        for n in sorted(args.lengths)
    ]


# ----------------------------------------------------------------------
# report
# ----------------------------------------------------------------------
def _f(value: Any, digits: int = 1) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def markdown(report: Dict[str, Any]) -> str:
    env = report['environment']
    lines = [
        f"# GPU self-check ({env['device']}, torch {env['torch']}, "
        f"{'tiny' if report['tiny'] else 'full size'})", ''
    ]
    attn = report.get('attention')
    if attn:
        lines += [
            '## Deformable attention: op vs mmcv PyTorch path', '',
            f"kernel: {attn.get('kernel')}; tolerance "
            f"{attn.get('tolerance')}; passed: {attn.get('passed')}", '',
            '| output | max abs diff |', '|---|---|'
        ]
        for key, value in attn.get('max_abs_diff', {}).items():
            lines.append(f'| {key} | {value:.2e} |')
        for key, value in attn.get('fp16_vs_fp32_max_abs_diff', {}).items():
            lines.append(f'| fp16 vs fp32: {key} | {value:.2e} |')
    if report.get('training'):
        lines += [
            '', '## One training iteration each', '',
            '| model | AMP | loss | finite | s | GPU peak MiB |',
            '|---|---|---|---|---|---|'
        ]
        for name, r in report['training'].items():
            if 'error' in r:
                lines.append(f"| {name} | failed: {r['error']} | | | | |")
                continue
            lines.append(f"| {name} | {r['amp']} | {r['loss']:.3f} | "
                         f"{r['finite']} | {r['seconds']:.2f} | "
                         f"{_f(r['gpu_peak_mib'], 0)} |")
    if report.get('speed'):
        lines += [
            '', '## Per-frame speed', '',
            '| path | precision | frame median ms | fps | network median '
            'ms | syncs/frame | downloads/frame | aten calls/frame |',
            '|---|---|---|---|---|---|---|---|'
        ]
        for r in report['speed']:
            if 'error' in r:
                lines.append(f"| {r['path']} | {r['precision']} | failed: "
                             f"{r['error']} | | | | | |")
                continue
            c = r.get('per_frame_counts') or {}
            frame = r.get('frame', {})
            lines.append(
                f"| {r['path']} | {r['precision']} | "
                f"{_f(frame.get('median_ms'))} | {_f(r.get('fps'))} | "
                f"{_f(r['network']['median_ms'])} | {_f(c.get('syncs'))} | "
                f"{_f(c.get('downloads'))} | {_f(c.get('aten_calls'), 0)} |")
    if report.get('memory'):
        lines += [
            '', '## Memory against video length (fast path)', '',
            '| frames | ms/frame | GPU peak MiB | host peak RSS MiB | '
            'kept RLE KiB |', '|---|---|---|---|---|'
        ]
        for r in report['memory']:
            lines.append(f"| {r['frames']} | {_f(r['ms_per_frame'])} | "
                         f"{_f(r['gpu_peak_mib'])} | "
                         f"{_f(r['peak_rss_mib'])} | {_f(r['rle_kib'])} |")
    return '\n'.join(lines) + '\n'


def _run(report: Dict[str, Any], key: str, fn: Callable) -> None:
    """One section; a failure is recorded, the others still run."""
    start = time.perf_counter()
    try:
        report[key] = fn()
    except Exception as err:
        report[key] = dict(error=f'{type(err).__name__}: {err}'[:500])
        traceback.print_exc()
    report.setdefault('seconds', {})[key] = time.perf_counter() - start


def report_paths(out: str) -> List[str]:
    """``gpu_selfcheck.json`` and ``gpu_selfcheck.md`` in ``out``."""
    return [osp.join(out, f'gpu_selfcheck.{ext}') for ext in ('json', 'md')]


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    json_path, md_path = report_paths(args.out)
    for path in (json_path, md_path):  # before the checks run (minutes)
        cli.check_new_file(path, 'output', args.force)
    device = torch.device(args.device)
    env = dict(
        torch=torch.__version__,
        python=platform.python_version(),
        device=str(device))
    if device.type == 'cuda':
        env.update(
            gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    report: Dict[str, Any] = dict(
        tiny=args.tiny, shape=args.shape, environment=env)
    if 'attention' not in args.skip:
        _run(report, 'attention', lambda: check_attention(args))
    if 'training' not in args.skip:
        training = {}
        for name, frames in (('idol', 2), ('teacher', 3), ('ookd', 3)):
            part: Dict[str, Any] = {}
            _run(
                part, name, lambda: train_iteration(name, args.configs[name],
                                                    args, frames))
            training[name] = part[name]
        report['training'] = training
    if 'speed' not in args.skip:
        _run(report, 'speed', lambda: check_speed(args))
    if 'memory' not in args.skip:
        _run(report, 'memory', lambda: check_memory(args))
    os.makedirs(args.out, exist_ok=True)
    with open(json_path, 'w') as f:
        json.dump(report, f, indent=2, default=str)
    text = markdown(report)
    with open(md_path, 'w') as f:
        f.write(text)
    print(text)
    return report


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
