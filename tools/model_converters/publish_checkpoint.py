# Copyright (c) mmookd contributors. All rights reserved.
"""Make a shippable checkpoint: weights only (no optimizer / message hub),
optionally in fp16, with the source's iteration and a sha256 in the meta.

    python tools/model_converters/publish_checkpoint.py \\
        work_dirs/idol_r18-tiny_1xb2-8k_toyvis-pretrain/iter_8000.pth \\
        checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth --fp16

Loading an fp16 checkpoint into an fp32 model casts it back (that is how
``load_from`` uses it). An existing output is never overwritten.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
from typing import List, Optional

import torch

import mmookd  # noqa: F401  (safe torch.load of mmengine checkpoints)
from mmookd.utils.cli import add_debug_argument, check_new_file, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('src', help='training checkpoint')
    parser.add_argument('dst', help='output path (must not exist)')
    parser.add_argument(
        '--fp16',
        action='store_true',
        help='store floating-point tensors in half precision')
    parser.add_argument(
        '--force', action='store_true', help='overwrite dst if it exists')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def publish(src: str,
            dst: str,
            fp16: bool = False,
            force: bool = False) -> str:
    """Write the weights of ``src`` to ``dst``; return the sha256."""
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint not found: {src}')
    check_new_file(dst, 'dst', force)
    if osp.abspath(src) == osp.abspath(dst):
        raise FileExistsError(f'refusing to write {dst}: it is the input')
    ckpt = torch.load(src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    if fp16:
        state = {
            k: v.half() if torch.is_floating_point(v) else v
            for k, v in state.items()
        }
    meta = dict(ckpt.get('meta', {}))
    meta = dict(
        source=osp.basename(src),
        iter=meta.get('iter'),
        seed=meta.get('seed'),
        fp16=fp16)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=state), dst)
    with open(dst, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    digest = publish(args.src, args.dst, args.fp16, args.force)
    size = osp.getsize(args.dst) / 2**20
    print(f'{args.dst}: {size:.1f} MiB, sha256 {digest}')


if __name__ == '__main__':
    sys.exit(run_cli(main))
