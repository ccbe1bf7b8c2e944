# Copyright (c) mmookd contributors. All rights reserved.
"""Export a distilled student: the OOKD checkpoint without what exists for
training only (issue #17).

An :class:`~mmookd.models.vis.OOKD` checkpoint is an IDOL checkpoint plus,
when the KD loss carries a learned projection (FitNets-style,
:class:`~mmookd.models.losses.ProjectedCosineKDLoss`, for a teacher of
another family), that projection under ``loss_kd.``. Training checkpoints
keep it (a resumed run continues it); the exported student drops every
``loss_*`` submodule's tensors and loads strictly into plain IDOL::

    python -m mmookd.apis.export_student \\
        work_dirs/<ookd run>/iter_600.pth student.pth
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import torch

import mmookd  # noqa: F401  (safe torch.load of mmengine checkpoints)

__all__ = ['student_state_dict', 'export_student']

# top-level submodules of the distiller that only exist for training
TRAINING_ONLY_PREFIXES = ('loss_', 'qfa.', 'extra_distill.')


def student_state_dict(
    state_dict: Dict[str, torch.Tensor]
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """The student's tensors of a distiller state dict.

    Returns:
        tuple: the kept state dict (same order) and the dropped keys.
    """
    kept, dropped = {}, []
    for key, value in state_dict.items():
        if key.startswith(TRAINING_ONLY_PREFIXES):
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped


def export_student(src: str, dst: str, force: bool = False) -> List[str]:
    """Write the student-only checkpoint of ``src`` to ``dst`` (weights
    and meta; no optimizer state). Returns the dropped keys."""
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint not found: {src}')
    if osp.exists(dst) and not force:
        raise FileExistsError(f'{dst} exists (pass force=True / --force)')
    if osp.abspath(src) == osp.abspath(dst):
        raise FileExistsError(f'refusing to write {dst}: it is the input')
    ckpt = torch.load(src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    kept, dropped = student_state_dict(state)
    meta = dict(ckpt.get('meta', {}) or {})
    meta['exported_from'] = osp.basename(src)
    meta['dropped_training_only'] = dropped
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=kept), dst)
    return dropped


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('src', help='OOKD training checkpoint')
    parser.add_argument('dst', help='student checkpoint to write')
    parser.add_argument('--force', action='store_true')
    args = parser.parse_args(argv)
    dropped = export_student(args.src, args.dst, args.force)
    print(f'{args.dst}: student weights, {len(dropped)} training-only '
          'tensors dropped' + (f' ({", ".join(dropped)})' if dropped else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
