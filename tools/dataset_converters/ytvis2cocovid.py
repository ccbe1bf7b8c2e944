# Copyright (c) mmookd contributors. All rights reserved.
"""Convert a native YouTube-VIS/OVIS JSON to CocoVID for mmdet's own
``YouTubeVISDataset``/``BaseVideoDataset``.

mmookd's ``YTVISDataset`` reads the native JSON directly; this is only
needed to use mmdet's loaders (e.g. to compare against them).

Example::

    python tools/dataset_converters/ytvis2cocovid.py \\
        data/youtube_vis_2019/annotations/train.json \\
        data/youtube_vis_2019/annotations/train_cocovid.json
"""
import argparse
import sys
from typing import List, Optional

from mmookd.datasets.converters import ytvis_to_cocovid
from mmookd.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Native YouTube-VIS/OVIS JSON -> CocoVID JSON')
    parser.add_argument('ann_file', help='native JSON (read only)')
    parser.add_argument('out_file', help='CocoVID JSON to write')
    parser.add_argument(
        '--force',
        action='store_true',
        help='overwrite out_file if it exists (never the input)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    counts = ytvis_to_cocovid(args.ann_file, args.out_file, args.force)
    print(f"wrote {args.out_file}: {counts['videos']} videos, "
          f"{counts['images']} images, {counts['annotations']} annotations")
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
