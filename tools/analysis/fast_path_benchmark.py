# Copyright (c) mmookd contributors. All rights reserved.
"""Host time of IDOL's per-frame post-processing, reference vs fast path,
and of the network, eager vs ``torch.compile``, beside mmdet's
Deformable-DETR (issue 15).

Post-processing (``--instances``): the network is replaced by scripted
outputs with exactly N objects (distinct boxes, disc-shaped mask logits
from the mask head, one embedding per object, moving 2 px per frame), so
what is timed is what follows the network and nothing else: filtering,
mask NMS, tracker, masks to the original size, RLE, video assembly.
Reported per frame: the reference path's time, the fast path's time on
the main thread (until the next frame can start) and until its worker has
encoded the frame.

Network (``--network``): IDOL's network (the fast path's, sync-free) and
mmdet's Deformable-DETR built from ``--ddetr-config`` (random weights, same
input), eager and compiled, each timed in this one run, so the ratio
between them holds on any machine even when the absolute numbers do not.

Examples::

    python tools/analysis/fast_path_benchmark.py configs/ookd_r50.py \\
        --shape 720 1280 --instances 10 50
    python tools/analysis/fast_path_benchmark.py configs/ookd_r50.py \\
        --shape 360 640 --network --compile

An existing ``--out`` file is never overwritten unless ``--force`` is given.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time
import warnings
from typing import Any, Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmookd import apis  # noqa: E402
from mmookd.utils import cli  # noqa: E402

DDETR_CONFIG = ('mmdet::deformable_detr/'
                'deformable-detr-refine_r50_16xb2-50e_coco.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Post-processing and network host time, reference vs '
        'fast path')
    parser.add_argument('config', help='IDOL / OOKD config')
    parser.add_argument(
        '--shape', type=int, nargs=2, default=[720, 1280], metavar=('H', 'W'))
    parser.add_argument(
        '--instances',
        type=int,
        nargs='*',
        default=[],
        help='post-processing rows with these numbers of objects')
    parser.add_argument(
        '--max-candidates',
        type=int,
        help='fast path: consider only the top-k queries (test_cfg)')
    parser.add_argument('--frames', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--network', action='store_true', help='time the networks')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='with --network: also torch.compile the networks')
    parser.add_argument(
        '--ddetr-config',
        default=DDETR_CONFIG,
        help='mmdet Deformable-DETR config for --network ("" to skip)')
    parser.add_argument(
        '--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', help='also write the results as JSON')
    parser.add_argument(
        '--force', action='store_true', help='overwrite --out if it exists')
    cli.add_debug_argument(parser)
    return parser.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _median_ms(times: List[float]) -> float:
    return statistics.median(times) * 1000.0


# ----------------------------------------------------------------------
# post-processing with scripted network outputs
# ----------------------------------------------------------------------
class ScriptedFrames:
    """Network outputs with ``num_objects`` objects on a grid, moving.

    Scores 0.9 .. 0.5 for the objects (above every IDOL threshold), 0.01
    for the other queries; one-hot embeddings (so tracks persist); disc
    masks of radius ``0.4 x`` the grid cell around each object's reference
    point, produced by a scripted mask head.
    """

    def __init__(self, model: Any, sample: Any, num_objects: int,
                 device: torch.device) -> None:
        self.model = model
        self.sample = sample
        self.num_objects = num_objects
        self.device = device
        meta = sample.metainfo
        self.img_h, self.img_w = meta['img_shape'][:2]
        det = model.detector
        self.num_queries = det.num_queries
        self.num_layers = det.decoder.num_layers
        self.num_classes = model.head.num_classes
        cols = int(np.ceil(np.sqrt(num_objects * self.img_w / self.img_h)))
        rows = int(np.ceil(num_objects / cols))
        self.cell = min(self.img_w / cols, self.img_h / rows)
        self.grid = [((c + 0.5) * self.img_w / cols,
                      (r + 0.5) * self.img_h / rows) for r in range(rows)
                     for c in range(cols)][:num_objects]

    def outputs(self, t: int) -> Dict[str, Any]:
        q, n, dev = self.num_queries, self.num_objects, self.device
        centers = torch.tensor(self.grid, device=dev) + 2.0 * t
        centers[:, 0] %= self.img_w
        centers[:, 1] %= self.img_h
        ref = torch.rand(q, 2, device=dev)
        ref[:n, 0] = centers[:, 0] / self.img_w
        ref[:n, 1] = centers[:, 1] / self.img_h
        size = 0.8 * self.cell
        boxes = torch.cat([ref, torch.full((q, 2), 0.01, device=dev)], 1)
        boxes[:n, 2] = size / self.img_w
        boxes[:n, 3] = size / self.img_h
        probs = torch.full((q, self.num_classes), 0.01, device=dev)
        probs[torch.arange(n), torch.arange(n) % self.num_classes] = \
            torch.linspace(0.9, 0.5, n, device=dev)
        logits = torch.logit(probs)
        dims = self.model.detector.embed_dims
        hidden = torch.randn(self.num_layers, 1, q, dims, device=dev)
        with torch.no_grad():
            embed_dims = self.model.head.forward_embed(hidden[-1]).shape[-1]
        embeds = torch.randn(q, embed_dims, device=dev) * 0.1
        embeds[torch.arange(n), torch.arange(n) % embed_dims] += 10.0
        references = [
            ref[None]
        ] + [torch.cat([ref, boxes[:, 2:]], 1)[None]] * self.num_layers
        pad_h, pad_w = self.sample.metainfo['batch_input_shape']
        return dict(
            hidden_states=hidden,
            references=references,
            cls_scores=logits[None, None].expand(self.num_layers, -1, -1, -1),
            bbox_preds=boxes[None, None].expand(self.num_layers, -1, -1, -1),
            embeds=embeds[None],
            mask_feats=torch.zeros(1, 8, pad_h // 8, pad_w // 8, device=dev))

    def masks(self, mask_feat, query_feats, ref_points, params=None):
        """Scripted mask head: disc logits around the reference points."""
        _, h, w = mask_feat.shape
        ys = torch.arange(2 * h, device=ref_points.device) * 4.0 + 2.0
        xs = torch.arange(2 * w, device=ref_points.device) * 4.0 + 2.0
        dy = ys[None, :, None] - ref_points[:, 1, None, None]
        dx = xs[None, None, :] - ref_points[:, 0, None, None]
        return (0.4 * self.cell - torch.sqrt(dx * dx + dy * dy)) / 4.0


def measure_postprocess(model: Any, inferencer: Any, shape: List[int],
                        num_objects: int, frames: int,
                        warmup: int) -> Dict[str, Any]:
    """Per-frame post-processing time of both paths on scripted outputs."""
    img = np.zeros((shape[0], shape[1], 3), np.uint8)
    inputs, sample = inferencer.preprocess(img)
    device = inputs.device
    script = ScriptedFrames(model, sample, num_objects, device)
    cached = [script.outputs(t) for t in range(warmup + frames)]
    head_forward = model.mask_head.forward_masks
    model.mask_head.forward_masks = script.masks
    fast_net = model.fast_path()
    row: Dict[str, Any] = dict(instances=num_objects)
    try:
        for fast in (False, True):
            model.test_cfg['fast'] = fast
            state = model.init_stream_state()
            calls = iter(cached)
            if fast:
                fast_net.network = lambda *a: next(calls)
            else:
                model.forward_frames = lambda *a: next(calls)
            main, total, outputs = [], [], []
            for i in range(warmup + frames):
                _sync(device)
                start = time.perf_counter()
                if fast:
                    future = model.predict_frame_async(inputs, sample, state)
                    _sync(device)
                    mid = time.perf_counter()
                    out = future.result()
                else:
                    out = model.predict_frame(inputs, sample, state)
                    _sync(device)
                    mid = time.perf_counter()
                end = time.perf_counter()
                if i >= warmup:
                    main.append(mid - start)
                    total.append(end - start)
                    outputs.append(len(out))
            state.close()
            key = 'fast' if fast else 'reference'
            row[key] = dict(
                main_thread_ms=_median_ms(main),
                total_ms=_median_ms(total),
                outputs_per_frame=float(np.mean(outputs)))
    finally:
        model.mask_head.forward_masks = head_forward
        model.__dict__.pop('forward_frames', None)
        fast_net.__dict__.pop('network', None)
        model.test_cfg['fast'] = False
    return row


# ----------------------------------------------------------------------
# networks
# ----------------------------------------------------------------------
def time_call(fn, device: torch.device, frames: int, warmup: int) -> float:
    """Median ms of ``fn()`` after ``warmup`` calls."""
    times = []
    with torch.no_grad():
        for i in range(warmup + frames):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return _median_ms(times)


def measure_networks(args: argparse.Namespace, model: Any,
                     inferencer: Any) -> List[Dict[str, Any]]:
    """IDOL's (sync-free) network and mmdet's Deformable-DETR, eager and
    compiled, on the same input, in this run."""
    from mmookd.models.vis.compiled_network import compile_network
    h, w = args.shape
    img = np.random.RandomState(0).randint(0, 255, (h, w, 3), np.uint8)
    inputs, sample = inferencer.preprocess(img)
    device = inputs.device
    rows = []
    fast = model.fast_path()
    nets = [('IDOL (fast path network)',
             lambda: fast.network(inputs, [sample]), fast)]
    if args.ddetr_config:
        ddetr = build_ddetr(args.ddetr_config, device)
        nets.append(('mmdet Deformable-DETR',
                     lambda: ddetr_forward(ddetr, inputs, sample), ddetr))
    for name, fn, _ in nets:
        rows.append(
            dict(
                network=name,
                mode='eager',
                median_ms=time_call(fn, device, args.frames, args.warmup)))
    if not args.compile:
        return rows
    compiled = [(nets[0][0], lambda: idol_compiled(inputs, [sample]))]
    idol_compiled = compile_network(fast.network)
    if args.ddetr_config:
        # mmcv's attention reads the level shapes on the host: graph breaks
        ddetr_compiled = torch.compile(
            lambda x: ddetr_forward(ddetr, x, sample), dynamic=False)
        compiled.append((nets[1][0], lambda: ddetr_compiled(inputs)))
    for name, fn in compiled:
        start = time.perf_counter()
        with torch.no_grad():
            fn()
        compile_s = time.perf_counter() - start
        rows.append(
            dict(
                network=name,
                mode='compiled',
                compile_s=compile_s,
                median_ms=time_call(fn, device, args.frames, args.warmup)))
    return rows


def build_ddetr(config: str, device: torch.device) -> Any:
    """mmdet's Deformable-DETR (random weights) in eval mode."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    if config.startswith('mmdet::'):  # a config shipped inside mmdet
        import mmdet
        config = osp.join(
            osp.dirname(mmdet.__file__), '.mim', 'configs',
            config[len('mmdet::'):])
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.to(device).eval()


def ddetr_forward(model: Any, inputs: torch.Tensor, sample: Any) -> Any:
    """mmdet's Deformable-DETR forward + head (``_forward``) on one frame."""
    from mmdet.structures import DetDataSample
    det_sample = DetDataSample(metainfo=sample.metainfo)
    return model._forward(inputs, [det_sample])


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    cli.check_new_file(args.out, '--out', args.force)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = apis.init_vis_model(args.config, device=args.device)
    model.test_cfg['max_candidates'] = args.max_candidates
    inferencer = apis.StreamingVISInferencer(
        model, pipeline=[dict(type='LoadImageFromNDArray')])
    report: Dict[str, Any] = dict(
        config=args.config,
        shape=args.shape,
        device=str(inferencer.device),
        torch=torch.__version__,
        threads=torch.get_num_threads())
    lines = []
    if args.instances:
        rows = [
            measure_postprocess(model, inferencer, args.shape, n, args.frames,
                                args.warmup) for n in args.instances
        ]
        report['postprocess'] = rows
        lines += [
            '| objects | outputs/frame | reference ms | fast: main thread '
            'ms | fast: incl. worker ms |', '|---|---|---|---|---|'
        ]
        for r in rows:
            lines.append(f"| {r['instances']} | "
                         f"{r['fast']['outputs_per_frame']:.1f} | "
                         f"{r['reference']['total_ms']:.1f} | "
                         f"{r['fast']['main_thread_ms']:.1f} | "
                         f"{r['fast']['total_ms']:.1f} |")
    if args.network:
        rows = measure_networks(args, model, inferencer)
        report['network'] = rows
        base = rows[0]['median_ms']
        lines += [
            '', '| network | mode | median ms | vs IDOL eager | compile s |',
            '|---|---|---|---|---|'
        ]
        for r in rows:
            compile_s = r.get('compile_s')
            lines.append(f"| {r['network']} | {r['mode']} | "
                         f"{r['median_ms']:.1f} | "
                         f"{r['median_ms'] / base:.2f} | "
                         f"{'-' if compile_s is None else f'{compile_s:.0f}'}"
                         ' |')
    print(f"\n{args.config}, {args.shape[0]}x{args.shape[1]}, "
          f"{report['device']}, torch {report['torch']}, "
          f"{report['threads']} thread(s)\n")
    print('\n'.join(lines))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
