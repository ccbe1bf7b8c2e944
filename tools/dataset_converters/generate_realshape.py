# Copyright (c) mmookd contributors. All rights reserved.
"""Write a small dataset laid out exactly like an official download.

Frames of the real sizes (1280x720, 1920x1080, portrait, odd sizes), every
category of the release listed, the release's directory and JSON layout,
YouTube-VIS-like and OVIS-like lengths: any shipped config runs on it by
pointing its ``data_root`` there. Example::

    python tools/dataset_converters/generate_realshape.py ytvis2021 \\
        data/realshape/youtube_vis_2021
    python tools/train.py configs/idol/idol_r50_8xb4-12k_youtubevis2021.py \\
        --data-root data/realshape/youtube_vis_2021

Never overwrites: the output directory must be new or empty.
"""
import argparse
import sys
from typing import List, Optional

from mmookd.datasets.realshape import REALSHAPE_KINDS, generate_realshape
from mmookd.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a real-shape YouTube-VIS / OVIS / COCO '
        'dataset (official layout, real frame sizes, small files).')
    parser.add_argument('kind', choices=REALSHAPE_KINDS)
    parser.add_argument('out', help='dataset root (new or empty directory)')
    parser.add_argument('--seed', type=int, default=0)
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    files = generate_realshape(args.out, args.kind, seed=args.seed)
    for split, path in files.items():
        print(f'{split}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
