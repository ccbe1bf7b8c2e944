# Copyright (c) mmookd contributors. All rights reserved.
"""Every shipped config parses, names registered components only, and keeps
the plugin import, so a typo never waits for a user's GPU job to show up;
OOKD students trained with Minor-Paste pack the paste sources (bank mode)."""
import glob
import os.path as osp

import pytest
from mmdet.registry import DATASETS, METRICS, MODELS
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))
CONFIGS = [c for c in CONFIGS if '_base_' not in c]


def _types(node, found):
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            found.add(node['type'])
        for v in node.values():
            _types(v, found)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _types(v, found)
    return found


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(c, ROOT) for c in CONFIGS])
def test_config_parses_and_resolves(path):
    cfg = Config.fromfile(path)
    assert 'mmookd' in cfg.custom_imports['imports']
    assert cfg.default_scope == 'mmdet'
    assert MODELS.get(cfg.model.type) is not None
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(key)
        # one metric or a list of them (mmengine's Evaluator takes both)
        for metric in (evaluator if isinstance(evaluator, list) else
                       [evaluator] if evaluator else []):
            assert METRICS.get(metric.type) is not None
    loader = cfg.get('test_dataloader')
    if loader:
        assert DATASETS.get(loader.dataset.type) is not None
    # every `type` is registered in one of mmdet's (or mmengine's)
    # registries; mmcv op names are looked up on mmcv.ops by their users
    import mmdet.registry as mmdet_registry
    import mmengine.registry as me_registry
    from mmengine.registry import Registry
    registries = [
        r for mod in (mmdet_registry, me_registry) for r in vars(mod).values()
        if isinstance(r, Registry)
    ]
    mmcv_ops = {'nms', 'soft_nms', 'RoIAlign'}
    unknown = sorted(
        name for name in _types(cfg._cfg_dict.to_dict(), set())
        if name not in mmcv_ops and not any(
            r.get(name) is not None for r in registries))
    assert not unknown, f'{osp.relpath(path, ROOT)}: unknown types {unknown}'
    assert _packs_paste_sources(cfg), 'Minor-Paste sources not packed'


def _packs_paste_sources(cfg) -> bool:
    """An OOKD student trained with Minor-Paste can read a knowledge bank
    (model.knowledge_bank) only if each pasted instance's source is
    packed: its bank entry is looked up by that source. True when the
    config is no such student."""
    if cfg.model.type != 'OOKD' or not cfg.get('train_dataloader'):
        return True
    dataset = cfg.train_dataloader.dataset
    if dataset.type != 'MultiImageMixDataset' or 'MinorPaste' not in str(
            dataset.pipeline):
        return True
    packs = [t for t in dataset.pipeline if t.get('type') == 'PackTrackInputs']
    return bool(packs) and 'instance_sources' in (packs[-1].get('meta_keys') or
                                                  ())
