# Copyright (c) mmookd contributors. All rights reserved.
"""IDOL's fast per-frame path (issue 15): the reference path's outputs,
at most two host-device synchronisations per frame. CPU; counts, never
timings."""
import os.path as osp
import threading
import warnings

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from mmookd.apis import StreamingVISInferencer, init_vis_model
from mmookd.utils import set_data_root
from mmookd.utils.postprocess_worker import PostprocessWorker
from mmookd.utils.sync_count import count_syncs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CFG = osp.join(REPO, 'configs/toy/idol_r18-tiny_1xb2-1500it_toyvis.py')
TOY_CKPT = osp.join(REPO, 'checkpoints/toy/idol_r18-tiny_toyvis-pretrain.pth')
R50_CFG = osp.join(REPO, 'configs/ookd_r50.py')

pytestmark = pytest.mark.usefixtures('single_thread')


@pytest.fixture(scope='module')
def open_thresholds(open_thresholds):
    """tests/conftest.py's open thresholds and the tracker's match
    threshold: every threshold open."""
    return {**open_thresholds, 'model.tracker.match_score_thr': 0.0}


def _counts(rles):
    return [r['counts'] for r in rles]


def _assert_same_frame(ref, fast):
    assert fast.instances_id.tolist() == ref.instances_id.tolist()
    assert fast.labels.tolist() == ref.labels.tolist()
    np.testing.assert_allclose(
        fast.scores.float().numpy(), ref.scores.float().numpy(), atol=1e-5)
    np.testing.assert_allclose(
        fast.bboxes.float().numpy(),
        ref.bboxes.float().numpy(),
        rtol=1e-5,
        atol=1e-3)
    assert _counts(fast.masks) == _counts(ref.masks)


def _toy_model(tiny_toyvis, checkpoint=None, options=None):
    cfg = Config.fromfile(TOY_CFG)
    set_data_root(cfg, tiny_toyvis)
    cfg.merge_from_dict(options or {})
    init_default_scope('mmdet')
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = init_vis_model(cfg, checkpoint)
    return cfg, model


@pytest.mark.parametrize('setting', ['pretrained', 'random-open'])
def test_fast_path_equals_reference_on_toy_videos(tiny_toyvis, setting,
                                                  open_thresholds):
    """Every ToyVIS val / long_val video through tools/test.py's path
    (``test_step``) and frame by frame: the fast path gives the reference
    path's track ids, labels, RLEs and (within 1e-5) scores, per frame and
    per video, with the shipped toy pre-training (real tracks, default
    thresholds) and with random weights and every threshold open (many
    instances, births and deaths)."""
    if setting == 'pretrained':
        cfg, model = _toy_model(tiny_toyvis, TOY_CKPT)
    else:
        cfg, model = _toy_model(tiny_toyvis, options=open_thresholds)
    outputs = 0
    dataset = DATASETS.build(cfg.test_dataloader.dataset)  # val + long
    if True:
        for idx in range(len(dataset)):
            batch = pseudo_collate([dataset[idx]])
            videos, frames = {}, {}
            for fast in (False, True):
                model.test_cfg['fast'] = fast
                with torch.no_grad():
                    track = model.test_step(batch)[0]
                videos[fast] = [f.pred_track_instances for f in track]
                data = model.data_preprocessor(batch, training=False)
                state = model.init_stream_state()
                frames[fast] = [
                    model.predict_frame(data['inputs'][0, t],
                                        data['data_samples'][0][t], state)
                    for t in range(data['inputs'].shape[1])
                ]
                state.close()
            for ref, fast in zip(frames[False], frames[True]):
                _assert_same_frame(ref, fast)
                outputs += len(ref)
            for ref, fast in zip(videos[False], videos[True]):
                assert fast.instances_id.tolist() == ref.instances_id.tolist()
                assert fast.labels.tolist() == ref.labels.tolist()
                torch.testing.assert_close(
                    fast.scores, ref.scores, atol=1e-5, rtol=0)
                assert _counts(fast.masks) == _counts(ref.masks)
    model.test_cfg['fast'] = False
    assert outputs > 20


def test_fast_stream_equals_reference_stream(tiny_toyvis, open_thresholds):
    """The inferencer's pipelined stream (frames submitted ahead while the
    worker encodes) yields the reference results in order; so do the
    single-frame calls and the video-level JSON entries."""
    cfg, model = _toy_model(tiny_toyvis, options=open_thresholds)
    rng = np.random.RandomState(0)
    frames = [rng.randint(0, 255, (50, 70, 3), np.uint8) for _ in range(12)]
    results, entries = {}, {}
    for mode in ('reference', 'stream', 'call'):
        model.test_cfg['fast'] = mode != 'reference'
        inferencer = StreamingVISInferencer(model)
        if mode == 'call':
            results[mode] = [inferencer(f) for f in frames]
        else:
            results[mode] = list(inferencer.stream(iter(frames)))
        entries[mode] = inferencer.video_results()
        inferencer.reset()
    model.test_cfg['fast'] = False
    assert sum(len(r) for r in results['reference']) > 20
    for mode in ('stream', 'call'):
        for ref, got in zip(results['reference'], results[mode]):
            assert got.frame_id == ref.frame_id
            assert got.track_ids.tolist() == ref.track_ids.tolist()
            assert got.class_names == ref.class_names
            np.testing.assert_allclose(got.scores, ref.scores, atol=1e-5)
            assert _counts(got.masks) == _counts(ref.masks)
        assert len(entries[mode]) == len(entries['reference'])
        for a, b in zip(entries[mode], entries['reference']):
            assert a['segmentations'] == b['segmentations']
            assert a['score'] == pytest.approx(b['score'], abs=1e-5)


@pytest.mark.parametrize('config, shape', [(TOY_CFG, (64, 96)),
                                           (R50_CFG, (64, 96))])
def test_sync_points_per_frame(config, shape, open_thresholds):
    """Counted with torch's profiler on the CPU (``.item()``, truth tests,
    ``nonzero`` and friends) and at the Python level (``.cpu()``,
    ``.numpy()``, ``.tolist()``, ...): the fast path has no profiler sync
    point and two downloads per frame (the decision matrix and the
    frame's masks), whatever the number of instances; the reference path
    has dozens (toy) to hundreds (R50) of profiler sync points."""
    options = dict(open_thresholds)
    if config == R50_CFG:  # fewer layers: the counts per layer are alike
        options.update({
            'model.detector.encoder.num_layers': 2,
            'model.detector.decoder.num_layers': 2,
            'model.detector.num_queries': 50
        })
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = init_vis_model(config, cfg_options=options)
    rng = np.random.RandomState(0)
    frames = [rng.randint(0, 255, shape + (3, ), np.uint8) for _ in range(4)]
    counted = 2
    report = {}
    for fast in (False, True):
        model.test_cfg['fast'] = fast
        inferencer = StreamingVISInferencer(
            model, pipeline=[dict(type='LoadImageFromNDArray')])
        for frame in frames[:2]:  # warm-up: tracks exist, caches made
            inferencer(frame)
        instances, report[fast] = count_syncs(
            lambda: [len(inferencer(f)) for f in frames[2:2 + counted]])
        assert sum(instances) >= counted  # the tracker had work
        inferencer.reset()
    model.test_cfg['fast'] = False
    fast = report[True]
    assert fast.syncs == 0, fast.sync_ops
    assert fast.downloads <= 2 * counted, fast.download_methods
    assert fast.syncs + fast.downloads <= 2 * counted
    ref = report[False]
    assert ref.syncs >= 20 * counted, ref.sync_ops
    assert ref.downloads > fast.downloads


def test_postprocess_worker_is_bounded_fifo_and_reports_errors():
    """At most ``max_pending`` jobs in flight (a third submit would block),
    run in submission order, exceptions reach the caller; 0 runs inline."""
    gate = threading.Event()
    done = []

    def job(i):
        gate.wait()
        done.append(i)
        return i

    worker = PostprocessWorker(max_pending=2)
    futures = [worker.submit(job, 0), worker.submit(job, 1)]
    assert not worker._slots.acquire(blocking=False)  # submit would block
    gate.set()
    assert [f.result() for f in futures] == [0, 1] and done == [0, 1]
    futures = [worker.submit(job, i) for i in range(2, 6)]
    assert [f.result() for f in futures] == [2, 3, 4, 5]
    assert done == list(range(6))

    def fail():
        raise ValueError('bad frame')

    with pytest.raises(ValueError, match='bad frame'):
        worker.submit(fail).result()
    assert worker.submit(job, 6).result() == 6  # the worker survives
    worker.close()
    inline = PostprocessWorker(max_pending=0)
    assert inline.submit(job, 7).done() and done[-1] == 7
    with pytest.raises(ValueError):
        PostprocessWorker(max_pending=-1)
