# Copyright (c) mmookd contributors. All rights reserved.
"""Build OOKD's offline knowledge bank: the frozen teacher once over every
whole training video, one offline feature per ground-truth instance.

    python tools/analysis/build_knowledge_bank.py TEACHER_CONFIG \\
        TEACHER_CHECKPOINT --out work_dirs/bank.pth

Then distil from it: ``model.knowledge_bank=dict(path=..., teacher_config=
TEACHER_CONFIG, teacher_checkpoint=TEACHER_CHECKPOINT, ann_file=...)`` in
the OOKD config (``mmookd.apis.build_knowledge_bank``). The videos are the
teacher config's training set, or ``--ann-file`` with ``--img-dir`` (a
YouTube-VIS JSON and its frame folder: for the token-average teacher, whose
config trains nothing). An existing bank file is never overwritten unless
``--force`` is given.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmookd.apis import build_knowledge_bank  # noqa: E402
from mmookd.models.utils import KnowledgeBank  # noqa: E402
from mmookd.utils import cli  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the teacher config file')
    parser.add_argument('checkpoint', help='the trained teacher checkpoint')
    parser.add_argument('--out', required=True, help='the bank file')
    parser.add_argument(
        '--force', action='store_true', help='overwrite --out if it exists')
    parser.add_argument(
        '--data-root', help='read the data from here (default: config)')
    parser.add_argument(
        '--ann-file',
        help='the videos: a YouTube-VIS JSON (default: the config\'s '
        'training set); with --img-dir')
    parser.add_argument('--img-dir', help='the frame folder of --ann-file')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--chunk-size',
        type=int,
        help='frames per online pass (default: the teacher test_cfg)')
    parser.add_argument(
        '--threads', type=int, help='CPU threads (torch.set_num_threads)')
    cli.add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> KnowledgeBank:
    args = parse_args(argv)
    # before the teacher is built and runs over the whole training set
    for path, what in ((args.config, 'config file'), (args.checkpoint,
                                                      'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    if args.ann_file or args.img_dir:
        if not (args.ann_file and args.img_dir):
            raise ValueError('--ann-file and --img-dir go together')
        if args.data_root:
            raise ValueError('--data-root applies to the config\'s data; '
                             'with --ann-file give the paths in full')
        if not osp.isfile(args.ann_file):
            raise FileNotFoundError(f'--ann-file not found: {args.ann_file}')
        if not osp.isdir(args.img_dir):
            raise FileNotFoundError(f'--img-dir not found: {args.img_dir}')
    cli.check_new_file(args.out, '--out', args.force)
    if args.threads:
        torch.set_num_threads(args.threads)
    return build_knowledge_bank(
        args.config,
        args.checkpoint,
        out=args.out,
        data_root=args.data_root,
        ann_file=args.ann_file,
        img_dir=args.img_dir,
        device=args.device,
        chunk_size=args.chunk_size)


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
