# Copyright (c) mmookd contributors. All rights reserved.
"""Tests of IDOL's tracker, the video assembler and the MinVIS tracker.

Embeddings are scripted (scaled one-hot vectors, so raw dot products are 0
or 100 and the softmaxes are ~0/1 or exactly 1/2); every expectation is
computed by hand in the comments (docs/hyperparameters.md §11, §19).
"""
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS

from mmookd.models.trackers.idol_tracker import (
    IDOLTracker,
    filter_frame_detections,
)
from mmookd.models.trackers.minvis_tracker import MinVISTracker
from mmookd.models.trackers.tensor_idol_tracker import TensorIDOLTracker
from mmookd.models.trackers.video_assembler import VideoTrackAssembler

DIM = 8
# the reference tracker and the fast path's tensor tracker (issue 15) take
# the same decisions: every scripted scenario runs on both
TRACKERS = [IDOLTracker, TensorIDOLTracker]


def e(i: int, scale: float = 10.0) -> torch.Tensor:
    v = torch.zeros(DIM)
    v[i] = scale
    return v


def disjoint_masks(n: int) -> torch.Tensor:
    """Detection j covers column j only: pairwise mask IoU 0."""
    m = torch.zeros(n, 4, max(n, 1))
    for j in range(n):
        m[j, :, j] = 1.0
    return m


def step(tracker, frame_id, embeds, scores):
    embeds = torch.stack(embeds)
    scores = torch.tensor(scores)
    ids = tracker.track(
        frame_id, embeds, scores, masks=disjoint_masks(len(scores)))
    return ids.tolist()


# ---------------------------------------------------------------------------
# per-frame filtering
# ---------------------------------------------------------------------------
def test_filter_frame_detections():
    cls = torch.tensor([
        [0.8, 0.1, 0.0],  # q0 class 0
        [0.7, 0.0, 0.0],  # q1 class 0, box IoU 0.952 with q0 -> suppressed
        [0.0, 0.6, 0.0],  # q2 class 1, same box: other class -> kept
        [0.05, 0.0, 0.0],  # q3 below 0.1 -> dropped
        [0.0, 0.0, 0.3],  # q4 class 2
    ])
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10.5], [0, 0, 10, 10],
                          [0, 0, 10, 10], [20, 20, 30, 30]]).float()
    inds, scores, labels = filter_frame_detections(cls, boxes)
    assert inds.tolist() == [0, 2, 4]
    assert torch.allclose(scores, torch.tensor([0.8, 0.6, 0.3]))
    assert labels.tolist() == [0, 1, 2]
    # IoU 100/105 = 0.952 is not > 0.96: q1 survives
    inds, _, _ = filter_frame_detections(cls, boxes, nms_iou_thr=0.96)
    assert inds.tolist() == [0, 1, 2, 4]
    # nothing above the threshold: keep the single best query, no NMS
    inds, scores, labels = filter_frame_detections(cls * 0.1, boxes)
    assert inds.tolist() == [0] and labels.tolist() == [0]
    assert scores.tolist() == pytest.approx([0.08])


# ---------------------------------------------------------------------------
# IDOL tracker
# ---------------------------------------------------------------------------
def test_build_from_registry():
    tr = MODELS.build(
        dict(type='IDOLTracker', addnew_score_thr=0.3, mask_nms_thr=0.3))
    assert isinstance(tr, IDOLTracker)
    assert (tr.init_score_thr, tr.addnew_score_thr, tr.match_score_thr,
            tr.mask_nms_thr, tr.nms_thr_post, tr.memory_len,
            tr.memo_tracklet_frames) == (0.2, 0.3, 0.5, 0.3, 0.05, 3, 10)
    assert isinstance(MODELS.build(dict(type='MinVISTracker')), MinVISTracker)
    asm = TASK_UTILS.build(dict(type='VideoTrackAssembler'))
    assert isinstance(asm, VideoTrackAssembler)
    assert asm.apply_cls_thres == 0.05


@pytest.mark.parametrize('Tracker', TRACKERS)
def test_continuation(Tracker):
    tr = Tracker()
    assert step(tr, 0, [e(0), e(1)], [0.9, 0.8]) == [0, 1]
    # same embeddings, swapped input order: M ~ identity -> ids follow
    assert step(tr, 1, [e(1), e(0)], [0.8, 0.9]) == [1, 0]
    assert step(tr, 2, [e(0), e(1)], [0.9, 0.8]) == [0, 1]
    assert tr.ids == [0, 1] and tr.exist_frames == [3, 3]


@pytest.mark.parametrize('Tracker', TRACKERS)
def test_birth_thresholds(Tracker):
    tr = Tracker(addnew_score_thr=0.3)  # OVIS setting
    # empty memory: init_score_thr 0.2 -> 0.25 born, 0.15 not
    assert step(tr, 0, [e(0), e(1), e(2)], [0.9, 0.25, 0.15]) == [0, 1, -1]
    # memory [A, B]; det C = e(3): dots [0, 0] -> d2t [.5, .5]; t2d of
    # column A over dets [A, B, C] ~ [1, 0, 0] -> M_C = [.25, .25] < .5.
    # Unmatched C with 0.35 > addnew 0.3 is born; D with 0.25 is not.
    ids = step(tr, 1, [e(0), e(1), e(3), e(4)], [0.9, 0.9, 0.35, 0.25])
    assert ids == [0, 1, 2, -1]
    assert tr.ids == [0, 1, 2]


@pytest.mark.parametrize('Tracker', TRACKERS)
def test_death_after_memo_tracklet_frames(Tracker):

    def run(reappear_frame):
        tr = Tracker()
        # tracks A(0), B(1), C(2); B and C stay, A vanishes after frame 0
        assert step(tr, 0, [e(0), e(1), e(2)], [0.9, 0.9, 0.9]) == [0, 1, 2]
        for f in range(1, reappear_frame):
            # det B vs memory [A, B, C]: d2t ~ [0, 1, 0] -> B
            assert step(tr, f, [e(1), e(2)], [0.9, 0.9]) == [1, 2]
        return tr, step(tr, reappear_frame, [e(0), e(1), e(2)],
                        [0.9, 0.9, 0.9])

    # 9 unmatched frames (1..9): A (last matched 0) still in memory at 10
    tr, ids = run(10)
    assert ids == [0, 1, 2]
    # 10 unmatched frames (1..10): removed after frame 10 (10 - 0 >= 10);
    # at 11 det A vs memory [B, C]: M = [.25, .25] -> new id 3
    tr, ids = run(11)
    assert ids == [3, 1, 2]
    assert tr.ids == [1, 2, 3]


@pytest.mark.parametrize('Tracker', TRACKERS)
def test_all_dead_uses_init_threshold(Tracker):
    tr = Tracker(init_score_thr=0.2, addnew_score_thr=0.5)
    assert step(tr, 0, [e(0)], [0.9]) == [0]
    tr.track(5, torch.zeros(0, DIM), torch.zeros(0))
    assert tr.ids == [0]
    tr.track(10, torch.zeros(0, DIM), torch.zeros(0))
    assert tr.empty
    # empty memory again: 0.3 > init 0.2 is born although < addnew 0.5
    assert step(tr, 11, [e(1)], [0.3]) == [1]


@pytest.mark.parametrize('Tracker', TRACKERS)
def test_bisoftmax_tie_higher_score_takes_track(Tracker):
    for low_score, expected_low in ((0.6, 2), (0.15, -1)):
        tr = Tracker()
        assert step(tr, 0, [e(0), e(1)], [0.9, 0.9]) == [0, 1]
        # two detections identical to A; the lower-scored one comes first
        # in the input. Sorted: X2 (0.8), X1. S = [[100, 0], [100, 0]]:
        # d2t rows [1, 0]; t2d column A [.5, .5], column B [.5, .5]
        # -> M = [[.75, .25], [.75, .25]]. X2 takes A (only candidate);
        # column A is zeroed, X1 sees [0, .25] -> unmatched -> new id if
        # 0.6 > addnew 0.2, else -1 (0.15).
        ids = step(tr, 1, [e(0), e(0)], [low_score, 0.8])
        assert ids == [expected_low, 0]


@pytest.mark.parametrize('frame_weight, expected', [(True, 1), (False, 0)])
@pytest.mark.parametrize('Tracker', TRACKERS)
def test_frame_weighting_flips_argmax(Tracker, frame_weight, expected):
    tr = Tracker(frame_weight=frame_weight)
    assert step(tr, 0, [e(0), e(1)], [0.9, 0.9]) == [0, 1]  # A, B
    for f in (1, 2, 3):  # only B: exist_frame A = 1, B = 4
        assert step(tr, f, [e(1)], [0.9]) == [1]
    assert tr.exist_frames == [1, 4]
    # X = 0.04 e_0: dots [0.4, 0]; d2t = softmax = [.598688, .401312];
    # one detection -> t2d = [1, 1]; M = [.799344, .700656], both > .5.
    # Frame weighting: [.799344 * 1, .700656 * 4] = [.80, 2.80] -> B (id 1);
    # plain argmax -> A (id 0).
    ids = step(tr, 4, [e(0, scale=0.04)], [0.9])
    assert ids == [expected]


@pytest.mark.parametrize('Tracker', TRACKERS)
def test_memory_embedding_weights(Tracker):
    tr = Tracker()
    frames = [([1., 0.], 0.5), ([0., 1.], 0.3), ([1., 1.], 0.9), ([2.,
                                                                   0.], 0.6)]
    # one track, one detection: d2t = t2d = 1 -> always matched.
    expected = [
        [1.0, 0.0],  # w = [.5 + 1]
        # w = [.5 + 1/2, .3 + 2/2] = [1.0, 1.3]
        [1.0 / 2.3, 1.3 / 2.3],
        # w = [.5 + 1/3, .3 + 2/3, .9 + 1] = [.8333, .9667, 1.9], sum 3.7
        [(0.5 + 1 / 3 + 1.9) / 3.7, (0.3 + 2 / 3 + 1.9) / 3.7],
        # memory_len 3 drops e_1: entries (0,1) .3, (1,1) .9, (2,0) .6
        # w = [.3 + 1/3, .9 + 2/3, .6 + 1], sum 3.8
        [(0.9 + 2 / 3 + 2 * 1.6) / 3.8, (0.3 + 1 / 3 + 0.9 + 2 / 3) / 3.8],
    ]
    for f, ((vec, s), exp) in enumerate(zip(frames, expected)):
        ids = tr.track(f, torch.tensor([vec]), torch.tensor([s]))
        assert ids.tolist() == [0]
        got = tr.memory_embeddings()[0]
        assert torch.allclose(got, torch.tensor(exp), atol=1e-6), (f, got)
    assert tr.num_memory_entries == 3

    # without temporal weighting: w = s after three frames
    tr = Tracker(temporal_weight=False)
    for f, (vec, s) in enumerate(frames[:3]):
        tr.track(f, torch.tensor([vec]), torch.tensor([s]))
    exp = torch.tensor([(0.5 + 0.9) / 1.7, (0.3 + 0.9) / 1.7])
    assert torch.allclose(tr.memory_embeddings()[0], exp, atol=1e-6)

    # long_match=False: momentum embedding e <- 0.2 e + 0.8 e_new
    tr = Tracker(long_match=False)
    for f, (vec, s) in enumerate(frames[:2]):
        tr.track(f, torch.tensor([vec]), torch.tensor([s]))
    exp = torch.tensor([0.2, 0.8])
    assert torch.allclose(tr.memory_embeddings()[0], exp, atol=1e-6)


@pytest.mark.parametrize('Tracker', TRACKERS)
def test_mask_nms_and_backdrops(Tracker):
    m = torch.zeros(4, 4, 4)
    m[0, 0:2] = 1  # 8 px
    m[1, 0:3] = 1  # 12 px, IoU with m0 = 8 / 12 = .667 > .5 -> suppressed
    m[2, 1:4] = 1  # 12 px, IoU with m0 = 4 / 16 = .25 -> kept
    m[3, 0:2] = 0.9  # probabilities: duplicate of m0 (IoU 1) -> suppressed
    embeds = torch.stack([e(0), e(1), e(2), e(3)])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    tr = Tracker()
    assert tr.track(0, embeds, scores, masks=m).tolist() == [0, -1, 1, -1]
    assert tr.ids == [0, 1] and tr.num_memory_entries == 2
    # m1 vs m2 IoU = 8 / 16 = .5, not > .7: nothing but the duplicate goes
    tr = Tracker(mask_nms_thr=0.7)
    assert tr.track(0, embeds, scores, masks=m).tolist() == [0, 1, 2, -1]

    # backdrops: not output, IoU < 0.05 with every higher-scored detection
    bm = torch.zeros(3, 4, 4)
    bm[0, 0:2] = 1
    bm[1, 3, :] = 1  # disjoint from bm0 -> backdrop
    bm[2, 1:3] = 1  # IoU .333 with bm0 -> not a backdrop
    tr = Tracker()
    ids = tr.track(0, embeds[:3], torch.tensor([0.9, 0.15, 0.1]), masks=bm)
    assert ids.tolist() == [0, -1, -1]
    assert tr.backdrops.tolist() == [False, True, False]
    assert tr.ids == [0]  # backdrops never enter the memory


@pytest.mark.parametrize('Tracker', TRACKERS)
def test_bounded_memory_with_churn(Tracker):
    g = torch.Generator().manual_seed(0)
    tr = Tracker()
    asm = VideoTrackAssembler()
    persistent = torch.randn(3, 32, generator=g) * 3
    rle = mask_util.encode(np.asfortranarray(np.ones((4, 4), np.uint8)))
    for f in range(500):
        noise = torch.randn(3, 32, generator=g) * 3  # fresh identities
        embeds = torch.cat([persistent, noise])
        scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
        ids = tr.track(f, embeds, scores)
        assert len(tr.ids) <= 6 * tr.memo_tracklet_frames
        assert tr.num_memory_entries <= len(tr.ids) * tr.memory_len
        assert tr._embeds.shape[1] == tr.memory_len
        assert max(tr.last_frames) == f
        assert min(tr.last_frames) > f - tr.memo_tracklet_frames
        out = ids >= 0
        asm.add_frame(f, ids[out], torch.rand(int(out.sum()), 4),
                      [rle] * int(out.sum()))
    assert tr.num_tracks > 100  # there was churn
    assert ids[:3].tolist() == [0, 1, 2]  # persistent identities held
    # the noise filter keeps only tracks with >= 3 hits or seen in one of
    # the last two frames, which drops most of the churn
    for t in asm._tracks.values():
        assert len(t['rles']) >= 3 or max(t['rles']) >= 498
    assert len(asm.track_ids) < tr.num_tracks / 2


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_tensor_tracker_equals_reference_on_random_streams(seed):
    """Scripted random streams (look-alike identities, churn, overlapping
    masks, empty frames, ties): the tensor tracker, with two slots to start
    (so it grows and reuses slots), takes every decision of the reference
    tracker and holds the same memory."""
    g = torch.Generator().manual_seed(seed)
    ref = IDOLTracker(memo_tracklet_frames=4)
    fast = TensorIDOLTracker(memo_tracklet_frames=4, init_capacity=2)
    identities = torch.randn(6, 16, generator=g) * 2
    for f in range(40):
        n = int(torch.randint(0, 7, (1, ), generator=g))
        who = torch.randint(0, 6, (n, ), generator=g)
        embeds = identities[who] + 0.3 * torch.randn(n, 16, generator=g)
        if f % 7 == 3 and n > 1:
            embeds[1] = embeds[0]  # exact duplicate: tied similarities
        scores = torch.rand(n, generator=g).round(decimals=1)  # ties
        masks = (torch.rand(n, 6, 6, generator=g) > 0.6).float()
        if n > 1:
            masks[1] = masks[0]  # a duplicate mask for mask NMS
        labels = torch.randint(0, 3, (n, ), generator=g)
        ids_ref = ref.track(f, embeds, scores, labels, masks)
        ids_fast = fast.track(f, embeds, scores, labels, masks)
        assert ids_fast.tolist() == ids_ref.tolist(), f
        assert fast.backdrops.tolist() == ref.backdrops.tolist(), f
        assert fast.ids == ref.ids and fast.num_tracks == ref.num_tracks
        assert fast.exist_frames == ref.exist_frames
        assert fast.last_frames == ref.last_frames
        if not ref.empty:
            assert torch.allclose(
                fast.memory_embeddings(), ref.memory_embeddings(), atol=1e-6)
            assert fast.num_memory_entries == ref.num_memory_entries
    assert ref.num_tracks > 10 and fast.capacity > 2


# ---------------------------------------------------------------------------
# video assembler
# ---------------------------------------------------------------------------
def _rle(h=6, w=8, y0=0, y1=2, x0=0, x1=3):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return mask_util.encode(np.asfortranarray(m))


def test_noise_filter():
    asm = VideoTrackAssembler()
    cs = torch.full((1, 2), 0.5)
    for f in range(12):
        present = [7]
        if f < 2:
            present.append(5)  # 2 hits, then vanishes
        if f < 3:
            present.append(9)  # 3 hits: kept
        if f == 11:
            present.append(5)  # comes back after deletion
        asm.add_frame(f, present, cs.expand(len(present), 2),
                      [_rle()] * len(present))
        if f == 8:  # filter only after frame index > 8
            assert 5 in asm.track_ids
        if f == 9:  # last two None and 2 < 3 hits -> dropped
            assert asm.track_ids == [7, 9]
    assert asm.track_ids == [7, 9, 5]
    preds = {p['track_id']: p for p in asm.finalize()}
    assert sorted(preds[5]['rles']) == [11]  # restarted empty
    assert len(preds[7]['rles']) == 12

    # a 9-frame video is never filtered
    asm = VideoTrackAssembler()
    for f in range(9):
        ids = [5] if f < 1 else []
        asm.add_frame(f, ids, cs[:len(ids)], [_rle()] * len(ids))
    assert asm.track_ids == [5]
    with pytest.raises(ValueError):
        asm.add_frame(10, [], cs[:0], [])


def test_mean_score_and_multi_class_output():
    asm = VideoTrackAssembler()
    per_frame = [[0.5, 0.06, 0.01], [0.6, 0.07, 0.01], [0.7, 0.08, 0.01]]
    rles = [_rle(y1=2), None, _rle(y0=1, y1=4, x0=2, x1=6)]
    for f, (s, r) in enumerate(zip(per_frame, rles)):
        if r is None:  # track absent in frame 1 (scores not counted)
            asm.add_frame(f, [], torch.zeros(0, 3), [])
        else:
            asm.add_frame(f, [4], torch.tensor([s]), [r])
    preds = asm.finalize()
    # present frames 0 and 2: mean = [.6, .07, .01] -> classes 0 and 1
    assert [p['label'] for p in preds] == [0, 1]
    assert [p['score'] for p in preds] == pytest.approx([0.6, 0.07])
    assert all(p['track_id'] == 4 for p in preds)

    frames = asm.to_track_instances(num_frames=4)
    assert len(frames) == 4
    assert len(frames[1]) == 0 and len(frames[3]) == 0
    f0, f2 = frames[0], frames[2]
    assert f0.instances_id.tolist() == [0, 1] == f2.instances_id.tolist()
    assert f0.labels.tolist() == [0, 1]
    assert torch.equal(f0.scores, f2.scores)
    assert f0.bboxes[0].tolist() == [0, 0, 3, 2]  # xyxy from the RLE
    assert f2.bboxes[0].tolist() == [2, 1, 6, 4]
    assert isinstance(f2.masks[0], dict) and 'counts' in f2.masks[0]
    # mmdet's YouTubeVISMetric: mean of per-frame scores, majority label
    for p in (0, 1):
        per_frame_scores = [
            float(fr.scores[fr.instances_id == p]) for fr in frames if len(fr)
        ]
        assert np.mean(per_frame_scores) == pytest.approx(
            preds[p]['score'], rel=1e-6)

    res = asm.to_ytvis_results(video_id=3, num_frames=4, cat_ids=[11, 12, 13])
    assert [r['category_id'] for r in res] == [11, 12]
    assert res[0]['video_id'] == 3
    segs = res[0]['segmentations']
    assert len(segs) == 4 and segs[1] is None and segs[3] is None
    assert isinstance(segs[0]['counts'], str)
    assert mask_util.area(
        dict(size=segs[2]['size'], counts=segs[2]['counts'].encode())) == 12
    filled = asm.to_ytvis_results(3, 4, absent_as_empty=True)
    assert filled[0]['category_id'] == 1
    assert filled[0]['segmentations'][1]['size'] == [6, 8]

    # 'max' scoring and single-class output
    asm.score_type, asm.multi_cls = 'max', False
    preds = asm.finalize()
    assert len(preds) == 1 and preds[0]['label'] == 0
    assert preds[0]['score'] == pytest.approx(0.7)


# ---------------------------------------------------------------------------
# MinVIS tracker
# ---------------------------------------------------------------------------
def test_minvis_hungarian_recovers_permutation():
    g = torch.Generator().manual_seed(1)
    q, c = 7, 16
    ref = torch.randn(q, c, generator=g)
    tr = MinVISTracker()
    assert tr.track(0, ref).tolist() == list(range(q))
    slots = ref
    for f in (1, 2, 3):
        perm = torch.randperm(q, generator=g)
        # query i is a noisy copy of slot perm[i]
        cur = slots[perm] + 0.01 * torch.randn(q, c, generator=g)
        ids = tr.track(f, cur)
        assert ids.tolist() == perm.tolist()
        # last_permutation aligns the frame to slot order
        assert torch.equal(cur[tr.last_permutation], cur[perm.argsort()])
        slots = cur[tr.last_permutation]
    # fewer queries than slots: every query keeps its slot
    ids = tr.track(4, slots[[5, 2]])
    assert ids.tolist() == [5, 2]
    assert tr.num_tracks == q
