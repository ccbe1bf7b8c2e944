# Copyright (c) mmookd contributors. All rights reserved.
"""Check a YouTube-VIS/OVIS dataset before training on it (read only).

Decodes every frame and every mask and compares them with the JSON (see
:func:`mmookd.datasets.checker.check_vis_dataset`), then prints the number
of problems per kind with the first examples, each naming the file, video,
frame and annotation.

Exit status: 0 no errors (warnings are printed), 1 errors found (or
warnings with ``--strict``), 2 bad arguments, a missing or unreadable
annotation file (also one that is not JSON), a missing image folder or an
existing ``--out``: one ``error: ...`` line (``--debug``: the traceback).

Example::

    python tools/misc/check_dataset.py \\
        data/youtube_vis_2021/annotations/instances_train.json \\
        data/youtube_vis_2021/train/JPEGImages --version 2021 --workers 8
"""
import argparse
import json
import os.path as osp
import sys
import time
from typing import List, NoReturn, Optional

from mmookd.datasets.checker import check_vis_dataset
from mmookd.datasets.ytvis import VIS_METAINFOS
from mmookd.utils import cli


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one ``error: ...`` line and status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f'error: {message} (see --help)\n')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = _Parser(
        description='Check a native YouTube-VIS/OVIS dataset (annotation '
        'JSON and frames) and report every problem; modifies nothing')
    parser.add_argument('ann_file', help='native annotation JSON')
    parser.add_argument(
        'img_root', help='folder the JSON file_names are relative to')
    parser.add_argument(
        '--version',
        choices=sorted(VIS_METAINFOS),
        help='also check the class names of this dataset version')
    parser.add_argument(
        '--workers',
        type=int,
        default=0,
        help='processes for decoding (default 0: this process)')
    parser.add_argument(
        '--out', help='also write the report as JSON (a new file)')
    parser.add_argument(
        '--max-examples',
        type=int,
        default=5,
        help='examples printed per problem kind (default 5)')
    parser.add_argument(
        '--skip-frames',
        action='store_true',
        help='check the JSON and masks only, not the frame files')
    parser.add_argument(
        '--strict', action='store_true', help='warnings also fail (exit 1)')
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.workers < 0:
        parser.error(f'--workers must be >= 0, got {args.workers}')
    if args.max_examples < 0:
        parser.error(f'--max-examples must be >= 0, got {args.max_examples}')
    return args


def _check_paths(args: argparse.Namespace) -> None:
    """The inputs exist and ``--out`` does not, before anything is read."""
    if not osp.isfile(args.ann_file):
        raise FileNotFoundError(f'annotation file not found: {args.ann_file}')
    if not osp.isdir(args.img_root):
        raise FileNotFoundError(f'image folder not found: {args.img_root}')
    if args.out is not None:
        out = osp.abspath(args.out)
        if osp.exists(out):
            raise FileExistsError(
                f'--out {args.out} exists (reports never overwrite)')
        if not osp.isdir(osp.dirname(out)):
            raise FileNotFoundError(
                f'--out folder {osp.dirname(out)} does not exist')


def main(argv: Optional[List[str]] = None) -> int:
    """The exit status of the check (0 clean, 1 problems found); raises on
    bad input (``run_cli`` turns that into one ``error:`` line and status
    2), e.g. ``VISDataError`` for an annotation file that is not JSON."""
    args = parse_args(argv)
    _check_paths(args)
    start = time.perf_counter()
    report = check_vis_dataset(
        args.ann_file,
        args.img_root,
        version=args.version,
        workers=args.workers,
        check_frames=not args.skip_frames)
    print(report.format(args.max_examples))
    print(f'checked in {time.perf_counter() - start:.1f} s')
    if args.out is not None:
        with open(args.out, 'x') as f:
            json.dump(report.to_dict(), f, indent=1)
        print(f'wrote {args.out}')
    failed = not report.ok or (args.strict and report.warnings)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(cli.run_cli(main))
