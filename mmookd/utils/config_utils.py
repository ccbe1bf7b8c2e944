# Copyright (c) mmookd contributors. All rights reserved.
"""Config helpers shared by the tools, the main job and the tests."""
from typing import Any, Dict, Optional, Set

from mmengine.config import Config, ConfigDict


def _walk_data_roots(node: Any, new_root: str, old_roots: Set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get('data_root'), str):
            old_roots.add(node['data_root'])
            node['data_root'] = new_root
        for value in node.values():
            _walk_data_roots(value, new_root, old_roots)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk_data_roots(value, new_root, old_roots)


def _replace_prefix(node: Any, old_roots: Set[str], new_root: str) -> Any:
    if isinstance(node, str):
        for old in sorted(old_roots, key=len, reverse=True):
            if old and node.startswith(old):
                return new_root + node[len(old):]
        return node
    if isinstance(node, dict):
        for key in list(node.keys()):
            if key != 'data_root':  # already the new root
                node[key] = _replace_prefix(node[key], old_roots, new_root)
        return node
    if isinstance(node, list):
        return [_replace_prefix(v, old_roots, new_root) for v in node]
    return node


def set_data_root(cfg: Config, data_root: str) -> Config:
    """Point every dataset of ``cfg`` (train/val/test, nested
    ``ConcatDataset``s and ``MultiImageMixDataset``s included), every path
    in the dataloaders (e.g. Minor-Paste's ``ann_file``) and every evaluator
    ``ann_file`` that lived under the old data root at ``data_root``.

    Configs build evaluator paths as ``data_root + 'annotations/...'`` at
    parse time, so overriding the ``data_root`` variable alone would leave
    them pointing at the old place.
    """
    new_root = data_root.rstrip('/') + '/'
    old_roots: Set[str] = set()
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    for key in loaders:
        if cfg.get(key):
            _walk_data_roots(cfg[key], new_root, old_roots)
    for key in loaders:
        if cfg.get(key):
            _replace_prefix(cfg[key], old_roots, new_root)
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(key)
        if evaluator:
            cfg[key] = _replace_prefix(evaluator, old_roots, new_root)
            if isinstance(cfg[key],
                          dict) and not isinstance(cfg[key], ConfigDict):
                cfg[key] = ConfigDict(cfg[key])
    if 'data_root' in cfg:
        cfg.data_root = new_root
    return cfg


def remap_data_roots(cfg: Config, mapping: Dict[str, str]) -> Config:
    """Move each of several data roots to its own new place.

    Like :func:`set_data_root`, but for configs that read more than one
    dataset (e.g. YouTube-VIS 2022: trained on the 2021 train set,
    evaluated on the 2022 valid set): every path in the dataloaders and
    evaluators that starts with a key of ``mapping`` starts with its value
    instead. Roots not in ``mapping`` are left alone.
    """
    mapping = {
        old.rstrip('/') + '/': new.rstrip('/') + '/'
        for old, new in mapping.items()
    }

    def remap(node: Any) -> Any:
        if isinstance(node, str):
            for old in sorted(mapping, key=len, reverse=True):
                if node.startswith(old) or node == old.rstrip('/'):
                    return mapping[old] + node[len(old):]
            return node
        if isinstance(node, dict):
            for key in list(node.keys()):
                node[key] = remap(node[key])
            return node
        if isinstance(node, list):
            return [remap(v) for v in node]
        return node

    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        if cfg.get(key):
            cfg[key] = remap(cfg[key])
            if isinstance(cfg[key],
                          dict) and not isinstance(cfg[key], ConfigDict):
                cfg[key] = ConfigDict(cfg[key])
    if isinstance(cfg.get('data_root'), str):
        cfg.data_root = remap(cfg.data_root)
    return cfg


def _drop_remote_init(node) -> None:
    """Set every ``Pretrained`` ``init_cfg`` read from a URL to None."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained' \
                and '://' in str(init.get('checkpoint', '')):
            node['init_cfg'] = None
        for value in node.values():
            _drop_remote_init(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _drop_remote_init(value)


def drop_checkpoints(cfg: Config) -> Config:
    """No checkpoint to load anywhere: random weights, for tests and timings
    that run without any weight file.

    Clears ``load_from``; an OOKD model's ``teacher`` gets no ``checkpoint``
    and ``online_checkpoint=None`` in its ``cfg_options`` (a random
    teacher); an offline teacher's ``online_checkpoint`` (its frozen IDOL)
    is cleared; a ``Pretrained`` ``init_cfg`` from a URL (mmdet's own
    configs inherited with ``mmdet::``, e.g. ``configs/mixin/``) becomes
    None, so nothing is downloaded. Other weight files (e.g. a metric's or
    a companion loss's RAFT ``checkpoint``) are left alone. Modifies
    ``cfg`` in place.
    """
    cfg.load_from = None
    model = cfg.model
    _drop_remote_init(model)
    if model.get('teacher') is not None:
        model.teacher.checkpoint = None
        model.teacher.cfg_options = dict(
            model.teacher.get('cfg_options') or {}, online_checkpoint=None)
    if 'online_checkpoint' in model:
        model.online_checkpoint = None
    return cfg


def fix_resize_scales(cfg: Config,
                      loader: str = 'train_dataloader',
                      which: str = 'min',
                      short_side: Optional[int] = None) -> Config:
    """Fix the resizes of the pipeline of ``cfg[loader]`` to one scale.

    Every ``RandomChoiceResize`` keeps its smallest (``which='min'``) or
    largest (``'max'``) scale, by short side; ``Resize`` is left as it is.
    With ``short_side``, every ``RandomChoiceResize`` and ``Resize`` gets
    ``(2 * short_side, short_side)`` instead (a reduced scale, the long
    side capped at twice the short one). Modifies ``cfg`` in place.
    """
    if which not in ('min', 'max'):
        raise ValueError(f"which must be 'min' or 'max', got {which!r}")
    pick = min if which == 'min' else max

    def scale(scales):
        if short_side is None:
            return pick(scales, key=lambda s: min(s))
        return (2 * short_side, short_side)

    def visit(node):
        if isinstance(node, dict):
            if node.get('type') == 'RandomChoiceResize' and node.get('scales'):
                node['scales'] = [scale(node['scales'])]
            elif node.get('type') == 'Resize' and short_side is not None:
                node['scale'] = scale([node['scale']])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(cfg[loader])
    return cfg
