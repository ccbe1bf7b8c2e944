# Copyright (c) mmookd contributors. All rights reserved.
"""The main job: generate ToyVIS, train on it, evaluate, print the AP table.

Everything runs on CPU with the toy configs. Existing data and checkpoints
are reused, never overwritten: a second run only evaluates (pass
``--retrain`` to train again into a fresh, timestamped work dir).
"""
import argparse
import os.path as osp
import sys
import time
from typing import Dict, List

from mmengine.config import Config
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import mmookd  # noqa: E402,F401
from mmookd.datasets.toyvis import generate_toyvis  # noqa: E402
from mmookd.utils import set_data_root  # noqa: E402

# key -> (name in the table, config). The offline teacher and the OOKD
# student are added here as they land.
STAGES = {
    'idol': ('IDOL (tiny)', 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py'),
    'masktrack': ('MaskTrack R-CNN (mmdet, tiny)',
                  'configs/toy/masktrack-rcnn_r18-tiny_1xb2-toyvis.py'),
}
DEFAULT_STAGES = ['idol']
TABLE_KEYS = [('AP', 'segm_mAP'), ('AP_S', 'short/segm_mAP'),
              ('AP_L', 'long/segm_mAP'), ('AP50_S', 'short/segm_mAP_50'),
              ('AR10_S', 'short/segm_AR@10')]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--data-root', default='data/toyvis')
    parser.add_argument('--work-dir', default='work_dirs/toy_pipeline')
    parser.add_argument(
        '--iters', type=int, help='override the training iterations')
    parser.add_argument(
        '--stages',
        nargs='+',
        choices=sorted(STAGES),
        default=DEFAULT_STAGES,
        help='which models to train and evaluate')
    parser.add_argument(
        '--retrain',
        action='store_true',
        help='train again even if a final checkpoint exists')
    return parser.parse_args()


def build_cfg(config: str,
              data_root: str,
              work_dir: str,
              iters: int = None) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.work_dir = work_dir
    set_data_root(cfg, data_root)
    if iters is not None:
        cfg.train_cfg.max_iters = iters
        cfg.train_cfg.val_interval = iters + 1
        for sched in cfg.param_scheduler:
            if sched.type == 'MultiStepLR':
                sched.end = iters
                sched.milestones = [int(iters * 0.8)]
    return cfg


def run_stage(name: str, config: str, args: argparse.Namespace) -> Dict:
    stem = osp.splitext(osp.basename(config))[0]
    work_dir = osp.join(args.work_dir, stem)
    cfg = build_cfg(config, args.data_root, work_dir, args.iters)
    ckpt = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    t0 = time.time()
    if osp.isfile(ckpt) and not args.retrain:
        print(f'[{name}] reusing {ckpt}')
    else:
        if osp.isfile(ckpt):  # --retrain: keep the old run, use a new dir
            work_dir = f'{work_dir}_{time.strftime("%Y%m%d_%H%M%S")}'
            cfg.work_dir = work_dir
            ckpt = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
        print(f'[{name}] training {config} -> {work_dir}')
        # evaluated once below; skip the Runner's end-of-training val
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        Runner.from_cfg(cfg).train()
    train_s = time.time() - t0
    test_cfg = build_cfg(config, args.data_root, work_dir, args.iters)
    test_cfg.load_from = ckpt
    t0 = time.time()
    metrics = Runner.from_cfg(test_cfg).test()
    return dict(metrics=metrics, train_s=train_s, test_s=time.time() - t0)


def format_table(rows: List) -> str:
    head = ['model'] + [k for k, _ in TABLE_KEYS] + ['train s', 'test s']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, res in rows:
        m = res['metrics']
        vals = [
            '%.3f' % m.get(f'youtube_vis/{key}', float('nan'))
            for _, key in TABLE_KEYS
        ]
        lines.append('| ' + ' | '.join(
            [name] + vals +
            ['%.0f' %
             res['train_s'], '%.0f' % res['test_s']]) + ' |')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    t0 = time.time()
    paths = generate_toyvis(args.data_root)
    print(f'ToyVIS ready in {args.data_root} ({time.time() - t0:.1f} s): '
          f'{sorted(paths)}')
    rows = [(STAGES[key][0], run_stage(*STAGES[key], args))
            for key in args.stages]
    print('\nToyVIS results (AP = YouTube-VIS 2022 style mean of AP_S on '
          'val and AP_L on long_val)')
    print(format_table(rows))
    print(f'total wall time {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
