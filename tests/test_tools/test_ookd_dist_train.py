# Copyright (c) mmookd contributors. All rights reserved.
"""``tools/dist_train.sh configs/ookd_r50.py 2`` starts and runs an
iteration on CPU: the flagship config (R50 student, R50 teacher with the
VITA aggregator, QFA + KD, Minor-Paste) at reduced input size on the tiny
ToyVIS, with random teacher weights."""
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config

from mmookd.utils import set_data_root

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FLAGSHIP = osp.join(ROOT, 'configs/ookd_r50.py')


def reduced_flagship(data_root: str, path: str) -> str:
    cfg = Config.fromfile(FLAGSHIP)
    set_data_root(cfg, data_root)
    root = data_root.rstrip('/') + '/'
    toy = dict(num_classes=8)
    cfg.model.detector.bbox_head.num_classes = toy['num_classes']
    cfg.model.teacher.checkpoint = None
    cfg.model.teacher.cfg_options = {
        'online_checkpoint': None,
        'online.detector.bbox_head.num_classes': toy['num_classes'],
    }
    loader = cfg.train_dataloader
    loader.update(batch_size=1, num_workers=0, persistent_workers=False)
    inner = loader.dataset.dataset
    inner.update(
        dataset_version=None,
        ann_file='annotations/toyvis_train.json',
        data_prefix=dict(img_path='train/JPEGImages'))
    paste, _, resize_flip = loader.dataset.pipeline[:3]
    paste.update(
        ann_file=root + 'annotations/toyvis_train.json', dataset_version=None)
    # reduced input size: short side 128 instead of 320-640
    resize_flip.transforms[0].scales = [(192, 128)]
    cfg.train_cfg.update(max_iters=1, val_interval=10)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.dump(path)
    return path


def test_dist_train_flagship_two_cpu_processes(tiny_toyvis, tmp_path):
    cfg = reduced_flagship(tiny_toyvis, str(tmp_path / 'ookd_r50_small.py'))
    work_dir = str(tmp_path / 'work')
    env = dict(
        os.environ, PYTHON=sys.executable, PORT='29541', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', work_dir],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'loss_kd' in log and 'loss_reid' in log
    ckpt = osp.join(work_dir, 'iter_1.pth')
    assert osp.isfile(ckpt)
    # the student's checkpoint holds no teacher weights
    import torch
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    assert not any(
        k.startswith(('teacher', '_teacher', 'online.')) for k in state)
    assert any(k.startswith('detector.backbone.') for k in state)
