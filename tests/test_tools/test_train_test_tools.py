# Copyright (c) mmookd contributors. All rights reserved.
"""End-to-end checks of the mm tools on the toy MaskTrack R-CNN config:
train, resume mid-training, test (AP table, results file, submission zip),
and ``dist_train.sh`` with 2 CPU processes (gloo)."""
import json
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest
from mmengine.config import Config

from mmookd.utils import set_data_root

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(ROOT, 'configs/toy/masktrack-rcnn_r18-tiny_1xb2-toyvis.py')


def _write_cfg(tmp_path, data_root: str, max_iters: int) -> str:
    cfg = Config.fromfile(TOY_CFG)
    set_data_root(cfg, data_root)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters + 1
    cfg.param_scheduler = [
        dict(
            type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)
    ]
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.checkpoint.max_keep_ckpts = 5
    cfg.default_hooks.logger.interval = 1
    cfg.train_dataloader.batch_size = 1
    path = str(tmp_path / 'toy_cfg.py')
    cfg.dump(path)
    return path


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _scalars(work_dir: str) -> list:
    rows = []
    for dirpath, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(dirpath, 'scalars.json')) as f:
                rows += [json.loads(line) for line in f if line.strip()]
    return rows


@pytest.fixture(scope='module')
def trained(tiny_toyvis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('train')
    cfg = _write_cfg(tmp, tiny_toyvis, max_iters=4)
    work_dir = str(tmp / 'work')
    _run([
        sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir,
        '--cfg-options', 'train_cfg.max_iters=2'
    ])
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    return cfg, work_dir


def test_resume_continues_from_checkpoint(trained):
    cfg, work_dir = trained
    proc = _run([
        sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir,
        '--resume',
        osp.join(work_dir, 'iter_2.pth')
    ])
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    iters = sorted(r['iter'] for r in _scalars(work_dir) if 'loss' in r)
    # first run logged 1, 2; the resumed one continues at 3, 4
    assert iters == [1, 2, 3, 4]


def test_test_tool_reports_ap_and_writes_results(trained, tmp_path):
    cfg, work_dir = trained
    ckpt = osp.join(work_dir, 'iter_2.pth')
    out = str(tmp_path / 'res' / 'toy')
    os.makedirs(osp.dirname(out))
    proc = _run([
        sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir',
        str(tmp_path / 'w'), '--out', out + '.json'
    ])
    log = proc.stdout + proc.stderr
    assert 'youtube_vis/segm_mAP' in log
    assert osp.isfile(out + '.json')
    with open(out + '.json') as f:
        results = json.load(f)
    assert isinstance(results, list)
    # an existing results file is refused before the model runs ...
    before = open(out + '.json', 'rb').read()
    args = [
        sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir',
        str(tmp_path / 'w'), '--out', out + '.json', '--format-only'
    ]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        f'error: --out {out}.json exists already; pass --force to overwrite '
        'it')
    assert open(out + '.json', 'rb').read() == before
    # ... and replaced with --force; format-only: the server zip with
    # results.json at its root
    _run(args + ['--force'])
    zips = [f for f in os.listdir(osp.dirname(out)) if f.endswith('.zip')]
    assert zips == ['toy.submission_file.zip']
    with zipfile.ZipFile(osp.join(osp.dirname(out), zips[0])) as zf:
        assert zf.namelist() == ['results.json']


def test_missing_checkpoint_is_a_clear_error(trained, tmp_path):
    cfg, _ = trained
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', cfg,
         str(tmp_path / 'nope.pth')],
        cwd=ROOT,
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert 'checkpoint not found' in proc.stderr
    assert 'nope.pth' in proc.stderr


def test_dist_train_two_cpu_processes(tiny_toyvis, tmp_path):
    cfg = _write_cfg(tmp_path, tiny_toyvis, max_iters=2)
    work_dir = str(tmp_path / 'dist')
    env = dict(os.environ, PYTHON=sys.executable, PORT='29533')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', work_dir],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log or 'world_size' in log
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
