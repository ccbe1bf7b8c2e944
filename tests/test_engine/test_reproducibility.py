# Copyright (c) mmookd contributors. All rights reserved.
"""Same seed, same machine, same numbers: two CPU training runs of the toy
student config (Minor-Paste in seeded data workers, the deformable
transformer, the dynamic-k assigner) give bit-identical weights; another
seed does not."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmookd.engine import ReproducibilityHook, make_reproducible
from mmookd.utils import set_data_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO,
               'configs/toy/ookd_r18-tiny_1xb2-toyvis_minor-paste-only.py')


@pytest.fixture(autouse=True)
def restore_torch_state():
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def train(data_root: str, work_dir: str, seed: int) -> dict:
    cfg = Config.fromfile(CFG)
    set_data_root(cfg, data_root)
    cfg.work_dir = work_dir
    cfg.load_from = None  # from the seeded initialisation
    cfg.randomness = dict(seed=seed, deterministic=True)
    cfg.custom_hooks = [dict(type='ReproducibilityHook', num_threads=1)]
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 100
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.interval = 100
    cfg.train_dataloader.num_workers = 2  # seeded workers
    cfg.train_dataloader.persistent_workers = False
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()
    state = runner.model.state_dict()
    return {k: v.detach().clone() for k, v in state.items()}


def test_same_seed_same_weights(tiny_toyvis, tmp_path):
    first = train(tiny_toyvis, str(tmp_path / 'a'), seed=0)
    second = train(tiny_toyvis, str(tmp_path / 'b'), seed=0)
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert different == []
    other = train(tiny_toyvis, str(tmp_path / 'c'), seed=1)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_hook_arguments():
    with pytest.raises(ValueError, match='num_threads'):
        ReproducibilityHook(num_threads=0)
    make_reproducible(num_threads=1, deterministic=False)
    assert torch.get_num_threads() == 1
