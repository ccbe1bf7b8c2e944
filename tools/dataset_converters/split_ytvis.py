# Copyright (c) mmookd contributors. All rights reserved.
"""Split a YouTube-VIS/OVIS train JSON (with ground truth) by video into
``train_sub.json`` and ``val_sub.json``.

The official valid sets have no public ground truth, so local AP needs a
held-out part of train. The split is seeded (reproducible) and never
overwrites existing files.

Example::

    python tools/dataset_converters/split_ytvis.py \\
        data/youtube_vis_2019/annotations/train.json \\
        data/youtube_vis_2019/annotations --val-ratio 0.1 --seed 0
"""
import argparse
import sys
from typing import List, Optional

from mmookd.datasets.converters import split_ytvis
from mmookd.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Split a native VIS train JSON into train_sub/val_sub')
    parser.add_argument('ann_file', help='native train JSON (read only)')
    parser.add_argument(
        'out_dir', help='folder for train_sub.json and val_sub.json')
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--val-ratio',
        type=float,
        default=0.1,
        help='fraction of videos for val_sub (default 0.1)')
    group.add_argument(
        '--num-val', type=int, default=None, help='number of val videos')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    train_file, val_file = split_ytvis(
        args.ann_file,
        args.out_dir,
        val_ratio=args.val_ratio,
        num_val=args.num_val,
        seed=args.seed)
    print(f'wrote {train_file} and {val_file}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
