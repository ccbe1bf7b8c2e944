# Copyright (c) mmookd contributors. All rights reserved.
"""Compare online trackers on ToyVIS: AP and identity survival.

One trained IDOL-style checkpoint, two association strategies:

* ``idol``: the config's own tracker, IDOL's memory bank with bi-softmax
  matching, birth / death and per-frame filtering (docs/hyperparameters.md
  §11);
* ``minvis``: MinVIS's frame-to-frame Hungarian matching of all queries
  (§19; ``MinVISTracker`` with ``model.test_cfg.filter_detections
  = False`` as the IDOL model requires, no noise filter since its tracks
  never die).

For every tracker and split (``val``: short videos, ``long_val``: long,
sparsely sampled ones) the script runs online inference, evaluates
YouTube-VIS AP with the official evaluator and identity survival / ID
switches / fragmentation with
:func:`mmookd.evaluation.functional.identity_survival.identity_survival`
(definitions there), and prints a markdown table.

Example::

    python tools/analysis/toy_tracking_benchmark.py \\
        --out work_dirs/toy_tracking_benchmark.json

(default: the main job's IDOL baseline, seed 0; ``--config
configs/toy/ookd_r18-tiny_1xb2-toyvis.py`` measures the OOKD student.)
"""
import argparse
import copy
import glob
import json
import logging
import os
import os.path as osp
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

import mmookd  # noqa: F401  (registers the plugin, safe torch.load)
from mmookd.evaluation.functional import evaluate_ytvis
from mmookd.evaluation.functional.identity_survival import identity_survival
from mmookd.evaluation.metrics import YTVISMetric
from mmookd.utils.cli import add_debug_argument, check_new_file, run_cli

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = 'configs/toy/ookd_r18-tiny_1xb2-toyvis_no-kd.py'
DEFAULT_WORK_DIR = 'work_dirs/toy_pipeline'  # tools/toy_pipeline.py's
SPLITS = ('val', 'long_val')

#: tracker key -> (table name, config overrides of ``model``)
TRACKERS = {
    'idol': ('IDOL memory bank', {}),
    'minvis': ('MinVIS Hungarian',
               dict(
                   tracker=dict(type='MinVISTracker'),
                   test_cfg=dict(filter_detections=False),
                   assembler=dict(noise_filter=False))),
}
AP_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'AR@1', 'AR@10')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='AP and identity survival of IDOL\'s memory-bank '
        'tracker vs the MinVIS Hungarian tracker on ToyVIS.')
    parser.add_argument(
        '--config',
        default=DEFAULT_CONFIG,
        help='IDOL-style config (default: the toy IDOL)')
    parser.add_argument(
        '--checkpoint',
        help='trained checkpoint (default: what tools/toy_pipeline.py '
        f'writes, {DEFAULT_WORK_DIR}/<config name>/iter_<max_iters>.pth)')
    parser.add_argument(
        '--work-dir',
        default=DEFAULT_WORK_DIR,
        help='tools/toy_pipeline.py --work-dir, to find the default '
        'checkpoint')
    parser.add_argument('--data-root', default='data/toyvis')
    parser.add_argument(
        '--splits', nargs='+', choices=SPLITS, default=list(SPLITS))
    parser.add_argument(
        '--trackers',
        nargs='+',
        choices=sorted(TRACKERS),
        default=['idol', 'minvis'])
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--iou-thr',
        type=float,
        default=0.5,
        help='per-frame mask IoU (>) to match a track to a GT')
    parser.add_argument(
        '--coverage-thr',
        type=float,
        default=0.8,
        help='a GT survives if its majority track covers >= this fraction '
        'of its visible frames')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.0,
        help='ignore predictions below this score for identity metrics')
    parser.add_argument('--out', help='also write the numbers to this JSON')
    parser.add_argument('--force', action='store_true', help='overwrite --out')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='show the evaluator log (AP summaries, warnings)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def default_checkpoint(config: str, work_dir: str = DEFAULT_WORK_DIR) -> str:
    """Final checkpoint of ``tools/toy_pipeline.py`` for ``config``.

    ``{work_dir}/{config stem}_seed0/iter_{max_iters}.pth``; if only
    ``--retrain`` runs (``{stem}_seed0_{timestamp}``) have it, the newest of
    those.
    """
    cfg = Config.fromfile(config)
    stem = osp.splitext(osp.basename(config))[0] + '_seed0'
    name = f"iter_{cfg.train_cfg['max_iters']}.pth"
    path = osp.join(work_dir, stem, name)
    if osp.isfile(path):
        return path
    others = sorted(glob.glob(osp.join(work_dir, f'{stem}_*', name)))
    return others[-1] if others else path


def split_dataset_cfg(cfg: Any, data_root: str, split: str) -> dict:
    """The config's test dataset settings pointed at one ToyVIS split."""
    dataset = cfg.test_dataloader.dataset
    while dataset.get('type') == 'ConcatDataset':
        dataset = dataset.datasets[0]
    dataset = copy.deepcopy(dataset)
    dataset.update(
        data_root=data_root.rstrip('/') + '/',
        ann_file=f'annotations/toyvis_{split}.json',
        data_prefix=dict(img_path=f'{split}/JPEGImages'),
        test_mode=True)
    return dataset


def run_split(model, dataset_cfg: dict, tmp_dir: str) -> List[dict]:
    """Online inference on every video; results in the official format."""
    loader = Runner.build_dataloader(
        dict(
            batch_size=1,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
            dataset=dataset_cfg))
    prefix = osp.join(tmp_dir, 'results')
    evaluator = Evaluator(YTVISMetric(format_only=True, outfile_prefix=prefix))
    evaluator.dataset_meta = loader.dataset.metainfo
    with torch.no_grad():
        for data in loader:
            evaluator.process(model.test_step(data), data)
    evaluator.evaluate(len(loader.dataset))
    with open(prefix + '.json') as f:
        return json.load(f)


def evaluate(ann_file: str, results: List[dict], args: argparse.Namespace,
             logger: logging.Logger) -> Dict[str, Any]:
    ap = evaluate_ytvis(ann_file, results, logger=logger)
    ident = identity_survival(
        ann_file,
        results,
        iou_thr=args.iou_thr,
        coverage_thr=args.coverage_thr,
        score_thr=args.score_thr)
    return dict(ap={k: ap[k] for k in AP_ITEMS}, identity=ident)


def format_table(rows: List[Dict[str, Any]], coverage_thr: float) -> str:
    head = [
        'tracker', 'split', 'AP', 'AP50', 'AR10', 'GT tubes',
        f'ID survival (>= {coverage_thr:.0%})', 'mean maj. coverage',
        'det. coverage', 'IDSW / GT', 'Frag / GT', 'tracks', 'time s'
    ]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in rows:
        ap, ident = row['ap'], row['identity']
        vals = [
            row['tracker'], row['split'], f"{ap['mAP']:.3f}",
            f"{ap['mAP_50']:.3f}", f"{ap['AR@10']:.3f}",
            str(ident['num_gt']), f"{ident['identity_survival']:.3f}",
            f"{ident['mean_coverage']:.3f}",
            f"{ident['detection_coverage']:.3f}",
            f"{ident['id_switches_per_gt']:.2f}",
            f"{ident['fragmentations_per_gt']:.2f}",
            str(ident['num_tracks']), f"{row['time_s']:.0f}"
        ]
        lines.append('| ' + ' | '.join(vals) + ' |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """Run the benchmark, print the table, return the rows."""
    args = parse_args(argv)
    check_new_file(args.out, '--out', args.force)
    config = args.config if osp.isfile(args.config) else osp.join(
        ROOT, args.config)
    if not osp.isfile(config):
        raise FileNotFoundError(f'config {args.config} not found')
    checkpoint = args.checkpoint or default_checkpoint(config, args.work_dir)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'checkpoint {checkpoint} not found: train the toy IDOL first '
            '(python tools/toy_pipeline.py writes '
            f'{args.work_dir}/<config name>/iter_<max_iters>.pth) or '
            'pass --checkpoint')
    for split in args.splits:
        ann = osp.join(args.data_root, 'annotations', f'toyvis_{split}.json')
        if not osp.isfile(ann):
            raise FileNotFoundError(
                f'{ann} not found: generate ToyVIS with python '
                'tools/dataset_converters/generate_toyvis.py (or point '
                '--data-root at it)')

    log_level = 'INFO' if args.verbose else 'WARNING'
    logger = MMLogger.get_instance(
        'toy_tracking_benchmark', log_level=log_level)
    base_cfg = Config.fromfile(config)
    init_default_scope(base_cfg.get('default_scope', 'mmdet'))
    rows = []
    for key in args.trackers:
        name, overrides = TRACKERS[key]
        cfg = copy.deepcopy(base_cfg)
        for field, value in overrides.items():
            if field == 'tracker':
                cfg.model[field] = value  # replace, do not merge
            else:
                cfg.model.setdefault(field, {}).update(value)
        model = MODELS.build(cfg.model)
        if not hasattr(model, 'tracker_cfg'):
            raise ValueError(f'{type(model).__name__} is not an IDOL-style '
                             'online model with a configurable tracker')
        model.init_weights()  # as the Runner does, before loading
        load_checkpoint(model, checkpoint, map_location='cpu', logger=logger)
        model.to(args.device).eval()
        for split in args.splits:
            ann_file = osp.join(args.data_root, 'annotations',
                                f'toyvis_{split}.json')
            t0 = time.time()
            with tempfile.TemporaryDirectory() as tmp_dir:
                results = run_split(
                    model, split_dataset_cfg(cfg, args.data_root, split),
                    tmp_dir)
            row = dict(
                tracker=name,
                tracker_key=key,
                split=split,
                **evaluate(ann_file, results, args, logger))
            row['time_s'] = time.time() - t0
            rows.append(row)
            print(f'[{name} / {split}] AP {row["ap"]["mAP"]:.3f}, identity '
                  f'survival {row["identity"]["identity_survival"]:.3f} '
                  f'({row["time_s"]:.0f} s)')
    print(f'\nToyVIS tracker benchmark ({checkpoint}; '
          f'IoU > {args.iou_thr}, survival: majority track covers >= '
          f'{args.coverage_thr:.0%} of the visible frames)\n')
    print(format_table(rows, args.coverage_thr))
    if args.out:
        out_dir = osp.dirname(osp.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        with open(args.out, 'w' if args.force else 'x') as f:
            json.dump(
                dict(
                    config=args.config,
                    checkpoint=checkpoint,
                    data_root=args.data_root,
                    iou_thr=args.iou_thr,
                    coverage_thr=args.coverage_thr,
                    score_thr=args.score_thr,
                    rows=rows),
                f,
                indent=1)
        print(f'\nwritten to {args.out}')
    return rows


if __name__ == '__main__':
    sys.exit(run_cli(main))
