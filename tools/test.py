# Copyright (c) mmookd contributors. All rights reserved.
"""Test (evaluate) a checkpoint with mmengine's Runner, as mmdet's
``tools/test.py``, with VIS-specific output options."""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmookd  # noqa: E402,F401  (registers components + safe torch.load)
import mmookd.utils.cli as cli  # noqa: E402
from mmookd.engine import setup_cpu_distributed, teardown_distributed  # noqa: E402
from mmookd.evaluation.functional import SUBMISSION_SUFFIX  # noqa: E402
from mmookd.utils import set_data_root  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a VIS model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs')
    parser.add_argument(
        '--out',
        help='prefix of the YouTube-VIS results: writes PREFIX.json (and '
        'PREFIX.submission_file.zip with --format-only); existing files are '
        'never overwritten without --force')
    parser.add_argument(
        '--force',
        action='store_true',
        help='overwrite the --out files if they exist')
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='only write the results (for splits without ground truth, '
        'e.g. the official valid/test servers)')
    parser.add_argument(
        '--show-dir',
        help='draw predictions into this directory (relative to work_dir)')
    parser.add_argument(
        '--data-root',
        help='dataset root to use instead of the config\'s data_root: '
        'every dataset, annotation and evaluator path under the old root '
        'moves with it')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    for path, what in ((args.config, 'config file'), (args.checkpoint,
                                                      'checkpoint')):
        if '://' not in path and not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    if args.out is not None:
        # before the model runs, not after: the results are written last
        prefix = osp.splitext(args.out)[0]
        cli.check_new_file(f'{prefix}.json', '--out', args.force)
        if args.format_only:
            cli.check_new_file(prefix + SUBMISSION_SUFFIX, '--out', args.force)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        set_data_root(cfg, args.data_root)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint

    evaluators = cfg.test_evaluator if isinstance(
        cfg.test_evaluator, list) else [cfg.test_evaluator]
    for evaluator in evaluators:
        if args.out is not None:
            evaluator.outfile_prefix = osp.splitext(args.out)[0]
            if args.force and evaluator.get('type') in ('YTVISMetric',
                                                        'mmookd.YTVISMetric'):
                evaluator.overwrite = True
        if args.format_only:
            evaluator.format_only = True

    if args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            hooks.visualization = dict(type='TrackVisualizationHook')
        hooks.visualization.draw = True
        hooks.visualization.test_out_dir = args.show_dir

    setup_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.test()
    teardown_distributed()


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
