# Copyright (c) mmookd contributors. All rights reserved.
"""YTVISMetric in a real 2-process (gloo, CPU) evaluation.

Rank 0 processes video 1; rank 1 processes video 2 and video 1 again (the
padding a distributed sampler adds when #videos % world_size != 0). The
per-video results are collected on CPU by ``BaseVideoMetric``; the numbers
must be those of the single-process identity-switch case (81/101, see
test_ytvis_metric.py) on every rank, the duplicate being dropped.
"""
import json
import os
import os.path as osp
import socket
import sys

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

HERE = osp.dirname(osp.abspath(__file__))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, workdir, queue):
    sys.path.insert(0, HERE)
    from mmengine.evaluator import Evaluator
    from test_ytvis_metric import CLASSES, switch_videos

    from mmookd.evaluation import YTVISMetric

    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    os.chdir(workdir)  # BaseVideoMetric collects through ./.dist_test
    try:
        videos = switch_videos()
        mine = [videos[0]] if rank == 0 else [videos[1], videos[0]]
        evaluator = Evaluator(
            YTVISMetric(
                ann_file=osp.join(workdir, 'gt.json'),
                outfile_prefix=osp.join(workdir, 'results')))
        evaluator.dataset_meta = dict(classes=CLASSES)
        for video in mine:
            evaluator.process(data_samples=[video])
        queue.put((rank, evaluator.evaluate(len(mine))))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason='no torch.distributed')
def test_metric_two_processes(tmp_path):
    sys.path.insert(0, HERE)
    from test_ytvis_metric import make_gt
    with open(tmp_path / 'gt.json', 'w') as f:
        json.dump(make_gt(), f)

    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    port = _free_port()
    procs = [
        ctx.Process(
            target=_worker, args=(rank, 2, port, str(tmp_path), queue))
        for rank in range(2)
    ]
    for p in procs:
        p.start()
    try:
        results = dict(queue.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    for rank in range(2):
        assert results[rank]['youtube_vis/segm_mAP'] == pytest.approx(81 / 101)
        assert results[rank]['youtube_vis/segm_mAP_75'] == pytest.approx(76 /
                                                                         101)
    with open(tmp_path / 'results.json') as f:
        saved = json.load(f)
    assert [r['video_id'] for r in saved] == [1, 1, 2, 2]
