# Copyright (c) mmookd contributors. All rights reserved.
"""Generate ToyVIS, the synthetic YouTube-VIS-format dataset mmookd trains
and tests on by default.

Example::

    python tools/dataset_converters/generate_toyvis.py --out data/toyvis

Safe to re-run: an existing dataset made with the same options is kept
(exit 0); anything else in the way is only replaced with ``--force``.
"""
import argparse
import importlib
import importlib.util
import json
import os.path as osp
import sys
import time
from types import ModuleType
from typing import List, Optional, Tuple


def _load_standalone(package: str, module: str) -> ModuleType:
    """Load ``mmookd.<package>.<module>`` straight from its file: the
    generator only needs numpy and OpenCV (the CLI helper only the standard
    library), while ``import mmookd`` pulls in torch, mmcv and mmdet, so
    data can be made quickly and before the OpenMMLab stack is built."""
    path = osp.join(
        osp.dirname(osp.abspath(__file__)), '..', '..', 'mmookd', package,
        f'{module}.py')
    if not osp.isfile(path):  # installed elsewhere: use the package
        return importlib.import_module(f'mmookd.{package}.{module}')
    name = f'_mmookd_{module}_standalone'
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_toyvis() -> ModuleType:
    """The ToyVIS generator, without importing torch (see above)."""
    return _load_standalone('datasets', 'toyvis')


def _size(text: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size must look like 160x120, got {text!r}')
    return w, h


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    defaults = load_toyvis().ToyVISOptions()
    parser = argparse.ArgumentParser(
        description='Generate the ToyVIS synthetic dataset in native '
        'YouTube-VIS format (train, val, long_val).')
    parser.add_argument(
        '--out', default='data/toyvis', help='dataset root directory')
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument(
        '--num-train',
        type=int,
        default=defaults.num_train,
        help='videos in train')
    parser.add_argument(
        '--num-val', type=int, default=defaults.num_val, help='videos in val')
    parser.add_argument(
        '--num-long-val',
        type=int,
        default=defaults.num_long_val,
        help='videos in long_val')
    parser.add_argument(
        '--sizes',
        type=_size,
        nargs='+',
        default=list(defaults.sizes),
        metavar='WxH',
        help='frame size choices, one drawn per video')
    parser.add_argument(
        '--frames',
        type=int,
        nargs=2,
        default=list(defaults.frames),
        metavar=('MIN', 'MAX'),
        help='frames per train/val video')
    parser.add_argument(
        '--long-frames',
        type=int,
        nargs=2,
        default=list(defaults.long_frames),
        metavar=('MIN', 'MAX'),
        help='frames per long_val video')
    parser.add_argument(
        '--stride',
        type=int,
        default=defaults.stride,
        help='simulated steps between train/val frames')
    parser.add_argument(
        '--long-stride',
        type=int,
        default=defaults.long_stride,
        help='simulated steps between long_val frames')
    parser.add_argument(
        '--instances',
        type=int,
        nargs=2,
        default=list(defaults.instances),
        metavar=('MIN', 'MAX'),
        help='instances per video')
    parser.add_argument(
        '--jpeg-quality', type=int, default=defaults.jpeg_quality)
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace an existing dataset with different options (only '
        'the paths the generator writes are removed)')
    _load_standalone('utils', 'cli').add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    toyvis = load_toyvis()
    opts = toyvis.make_toyvis_options(
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        num_long_val=args.num_long_val,
        sizes=args.sizes,
        frames=args.frames,
        long_frames=args.long_frames,
        stride=args.stride,
        long_stride=args.long_stride,
        instances=args.instances,
        jpeg_quality=args.jpeg_quality)
    status = toyvis.toyvis_status(args.out, opts)
    if status == 'identical' and not args.force:
        print(f'ToyVIS already exists in {args.out} with the same options '
              f'(version {toyvis.TOYVIS_VERSION}); nothing to do.')
        return 0
    if status == 'conflict' and not args.force:
        raise FileExistsError(
            f'{args.out} already holds a ToyVIS dataset with other '
            'options, an incomplete one, or files in its paths '
            f'({toyvis.TOYVIS_META_FILE}, annotations/toyvis_*.json, '
            '*/JPEGImages). Nothing was changed; use --force to replace '
            'them.')
    start = time.time()
    paths = toyvis.generate_toyvis(args.out, opts, overwrite=True)
    print(f'ToyVIS written to {args.out} in {time.time() - start:.1f} s')
    with open(osp.join(args.out, toyvis.TOYVIS_META_FILE)) as f:
        summary = json.load(f)['summary']
    for split, path in paths.items():
        counts = ', '.join(f'{v} {k}' for k, v in summary[split].items())
        print(f'  {split}: {path} ({counts})')
    return 0


if __name__ == '__main__':
    sys.exit(_load_standalone('utils', 'cli').run_cli(main))
