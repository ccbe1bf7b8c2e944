# Copyright (c) mmookd contributors. All rights reserved.
"""torch >= 2.6 loads with ``weights_only=True``; mmengine checkpoints must
resume through mmookd's allow-list without switching the safety off."""
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmookd  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


class _Regressor(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x, y, mode='tensor'):
        if isinstance(x, (list, tuple)):
            x, y = torch.stack(x), torch.stack(y)
        return dict(loss=((self.fc(x) - y)**2).mean())


class _Data(Dataset):

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 4, generator=g)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return dict(x=self.x[i], y=self.y[i])


def _runner(work_dir: str, max_iters: int, resume_from=None) -> Runner:
    from mmengine.hooks import Hook

    class Record(Hook):
        """Records the state right after (re)starting, and every loss."""

        def __init__(self):
            self.losses = {}
            self.start = {}

        def before_train(self, runner):
            opt = runner.optim_wrapper.optimizer
            self.start = dict(
                iter=runner.iter,
                lr=opt.param_groups[0]['lr'],
                steps=[int(s['step']) for s in opt.state.values()],
                sched_step=runner.param_schedulers[0].last_step)

        def after_train_iter(self,
                             runner,
                             batch_idx,
                             data_batch=None,
                             outputs=None):
            self.losses[runner.iter] = float(outputs['loss'])

    runner = Runner(
        model=_Regressor(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=_Data(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        param_scheduler=dict(
            type='MultiStepLR', by_epoch=False, milestones=[3], gamma=0.5),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[Record()],
        randomness=dict(seed=0),
        default_scope='mmdet',
        resume=resume_from is not None,
        load_from=resume_from)
    return runner


def _record(runner: Runner):
    return [h for h in runner.hooks if type(h).__name__ == 'Record'][0]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('full'))
    runner = _runner(work_dir, max_iters=6)
    runner.train()
    return work_dir, runner


def test_bare_torch_load_refuses_mmengine_checkpoint(trained):
    """Without mmookd the default weights_only load fails: the fix is
    needed (this is what broke mmengine resume on torch >= 2.6)."""
    work_dir, _ = trained
    code = textwrap.dedent(f"""
        import pickle, torch
        try:
            torch.load({os.path.join(work_dir, 'iter_3.pth')!r})
        except pickle.UnpicklingError as e:
            print('REFUSED', 'HistoryBuffer' in str(e) or 'getattr' in str(e))
        else:
            print('LOADED')
    """)
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         check=True).stdout
    assert 'REFUSED True' in out


def test_mmookd_loads_with_weights_only(trained):
    work_dir, _ = trained
    ckpt = torch.load(os.path.join(work_dir, 'iter_3.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 3
    hist = ckpt['message_hub']['log_scalars']['train/loss']
    assert len(hist.data[0]) == 3 and hist.mean() > 0


def test_getattr_stand_in_refuses_other_attributes(tmp_path):
    """The allow-listed ``builtins.getattr`` only resolves HistoryBuffer
    statistics, so a crafted checkpoint cannot reach e.g. ``os.system``."""

    class Evil:

        def __reduce__(self):
            return (getattr, (torch.nn.Module, 'state_dict'))

    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_resume_restores_iteration_optimizer_scheduler(trained, tmp_path):
    work_dir, full = trained
    full_losses = _record(full).losses
    resumed = _runner(
        str(tmp_path),
        max_iters=6,
        resume_from=os.path.join(work_dir, 'iter_3.pth'))
    resumed.train()
    # state right after resuming: iteration, AdamW moments, scheduler
    start = _record(resumed).start
    assert start['iter'] == 3
    assert start['lr'] == pytest.approx(0.025)  # halved at iter 3
    assert start['steps'] and all(s == 3 for s in start['steps'])
    assert start['sched_step'] == 3
    # the loss curve continues exactly where the uninterrupted run went
    res_losses = _record(resumed).losses
    # iterations are 0-based inside hooks: the resumed run trains 3, 4, 5
    assert sorted(res_losses) == [3, 4, 5]
    for it in (3, 4, 5):
        assert res_losses[it] == pytest.approx(full_losses[it], rel=1e-5)
    w_full = full.model.fc.weight.detach()
    w_res = resumed.model.fc.weight.detach()
    assert torch.allclose(w_full, w_res, atol=1e-6)
