# Copyright (c) mmookd contributors. All rights reserved.
"""Fine-tuning from a pre-training with another class count (``load_from``).

IDOL's official COCO pre-training has an 80-class classifier; the
YouTube-VIS (40) and OVIS (25) fine-tunings load it with detectron2's
checkpointer, which skips tensors of a different shape with a warning. The
Runner's ``load_from`` (mmengine 0.10.7 ``Runner.load_checkpoint`` ->
``_load_checkpoint_to_model(strict=False)`` -> ``load_state_dict``) does the
same: torch reports the size mismatch instead of copying, and mmengine
prints it as a warning. This test pins that on two toy IDOLs.
"""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model.weight_init import bias_init_with_prob
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmookd  # noqa: F401  (registers the plugin)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    """One intra-op thread on the shared, oversubscribed CPU."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def build_toy_idol(num_classes: int, seed: int) -> torch.nn.Module:
    """The toy IDOL with ``num_classes``, initialised as the Runner does
    before it loads ``load_from``."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(TOY_CFG).model
    cfg.detector.bbox_head.num_classes = num_classes
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_load_from_skips_only_the_mismatched_classifier(tmp_path, capsys):
    pretrain = build_toy_idol(80, seed=0).state_dict()
    path = str(tmp_path / 'coco_pretrain.pth')
    torch.save(dict(meta=dict(), state_dict=pretrain), path)

    model = build_toy_idol(40, seed=1)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    # Runner.load_checkpoint itself, on a stand-in for the rest of the Runner
    runner = SimpleNamespace(
        model=model,
        call_hook=lambda *args, **kwargs: None,
        logger=MMLogger.get_current_instance())
    Runner.load_checkpoint(runner, path)
    printed = capsys.readouterr().out

    loaded = model.state_dict()
    skipped = [k for k in loaded if loaded[k].shape != pretrain[k].shape]
    assert skipped and all('.cls_branches.' in k for k in skipped)
    assert len(skipped) == 2 * len(model.detector.bbox_head.cls_branches)
    for key in skipped:
        assert f'size mismatch for {key}' in printed, key
        assert torch.equal(loaded[key], fresh[key]), key  # left initialised
        if key.endswith('.bias'):  # focal-loss prior of init_weights
            torch.testing.assert_close(
                loaded[key],
                torch.full_like(loaded[key], bias_init_with_prob(0.01)))
    for key in loaded.keys() - set(skipped):
        assert torch.equal(loaded[key], pretrain[key]), key
    assert 'missing keys' not in printed and 'unexpected key' not in printed
