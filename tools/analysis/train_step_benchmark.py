# Copyright (c) mmookd contributors. All rights reserved.
"""Seconds per training iteration of a config, data loading excluded.

Builds the config's train dataset and model exactly as the Runner does
(random weights: no checkpoint is loaded; an OOKD teacher is random too),
runs ``--warmup`` + ``--iters`` optimisation steps on batches of
``--batch-size`` samples and prints the minimum / median / maximum seconds
of the forward + backward + optimiser step (``--vs CONFIG``: a second
config in turn with the first, and the ratio). ``--scale min|max`` fixes every
multi-scale resize of the train pipeline to its smallest or largest scale,
so the two ends of the config's real input range can be timed. Example::

    python tools/dataset_converters/generate_realshape.py ytvis2021 \\
        data/realshape/youtube_vis_2021
    python tools/analysis/train_step_benchmark.py \\
        configs/idol/idol_r50_8xb4-12k_youtubevis2021.py \\
        --data-root data/realshape/youtube_vis_2021 --scale min --iters 3
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time
from typing import List, Optional

import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmookd  # noqa: F401  (registers the plugin)
from mmookd.utils import set_data_root
from mmookd.utils.cli import add_debug_argument, run_cli
from mmookd.utils.config_utils import drop_checkpoints, fix_resize_scales


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time training iterations of a config (CPU or GPU)')
    parser.add_argument('config')
    parser.add_argument('--data-root', help='dataset root for the config')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument(
        '--scale',
        choices=['min', 'max', 'config'],
        default='config',
        help='fix multi-scale resizes to their smallest / largest scale')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument(
        '--vs',
        help='a second config timed in turn with the first (A B A B ...); '
        'prints both and the step-by-step ratio A / B')
    parser.add_argument(
        '--vs-cfg-options', nargs='+', action=DictAction, default={})
    add_debug_argument(parser)
    return parser.parse_args(argv)


def build_lane(config: str, cfg_options: dict,
               args: argparse.Namespace) -> dict:
    """Dataset, model and optimiser of one config, as the Runner builds
    them (random weights, no checkpoint)."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    drop_checkpoints(cfg)  # timing needs none, and none may exist
    if args.scale != 'config':
        fix_resize_scales(cfg, 'train_dataloader', which=args.scale)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # the model first: a bad model config is reported before the data is read
    model = MODELS.build(cfg.model).to(args.device)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    model.init_weights()
    model.train()
    return dict(
        config=config,
        dataset=dataset,
        model=model,
        optim_wrapper=build_optim_wrapper(model, cfg.optim_wrapper),
        times=[],
        shapes=[])


def step(lane: dict, it: int, args: argparse.Namespace) -> float:
    """One timed optimisation step of a lane on batch ``it``."""
    dataset = lane['dataset']
    batch = pseudo_collate([
        dataset[(it * args.batch_size + b) % len(dataset)]
        for b in range(args.batch_size)
    ])
    lane['shapes'].append([list(x.shape) for x in batch['inputs']])
    if args.device.startswith('cuda'):
        torch.cuda.synchronize()
    start = time.perf_counter()
    lane['model'].train_step(batch, lane['optim_wrapper'])
    if args.device.startswith('cuda'):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    for config in (args.config, args.vs):
        if config is not None and not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lanes = [build_lane(args.config, args.cfg_options, args)]
    if args.vs:
        lanes.append(build_lane(args.vs, args.vs_cfg_options, args))
    # with --vs the two configs step in turn (A B A B ...) on the same
    # batch indices, so a drift of the machine's speed hits both alike
    for it in range(args.warmup + args.iters):
        for lane in lanes:
            seconds = step(lane, it, args)
            if it >= args.warmup:
                lane['times'].append(seconds)
    results = []
    for lane in lanes:
        times = lane['times']
        results.append(
            dict(
                config=lane['config'],
                scale=args.scale,
                batch_size=args.batch_size,
                threads=torch.get_num_threads(),
                device=args.device,
                iters=len(times),
                min_s=min(times),
                median_s=statistics.median(times),
                max_s=max(times),
                input_shapes=lane['shapes'][args.warmup:]))
    if not args.vs:
        print(json.dumps(results[0]))
        return 0
    ratios = [a / b for a, b in zip(lanes[0]['times'], lanes[1]['times'])]
    print(
        json.dumps(
            dict(
                a=results[0],
                b=results[1],
                ratio_median=statistics.median(ratios),
                ratio_min=min(ratios),
                ratio_max=max(ratios))))
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
