# Copyright (c) mmookd contributors. All rights reserved.
"""Object token aggregators of the offline teacher (OOKD Sec. 3.2, Table
6; docs/hyperparameters.md §13-14): window / shifted-window masking checked by
hand and by perturbation, shapes, frame-query selection and the token
average."""
import pytest
import torch
from mmdet.registry import MODELS
from torch import nn

import mmookd.models  # noqa: F401  (registers the models)
from mmookd.models.aggregators import (
    ObjectTokenDecoder,
    ObjectTokenEncoder,
    TokenAverageAggregator,
    VITAAggregator,
)

D = 16


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


class PassThrough(nn.Module):
    """An encoder layer that does nothing (isolates the next layer)."""

    def forward(self, x, attn_mask=None):
        return x


def encoder(window_size=4, num_layers=2, seed=0):
    torch.manual_seed(seed)
    enc = ObjectTokenEncoder(
        embed_dims=D,
        num_layers=num_layers,
        num_heads=2,
        feedforward_channels=32,
        window_size=window_size)
    enc.init_weights()
    return enc


def changed_frames(enc, tokens, frame, shift, padding_mask=None):
    """Frames whose output changes when ``frame``'s tokens change."""
    with torch.no_grad():
        out = enc(tokens, padding_mask, shift=shift)
        other = tokens.clone()
        other[:, frame] += torch.randn_like(other[:, frame])
        out2 = enc(other, padding_mask, shift=shift)
    diff = (out - out2).abs().amax(dim=(0, 2, 3))
    return [t for t in range(tokens.size(1)) if diff[t] > 1e-6]


def test_window_mask_hand_checked():
    """T = 7, W = 4: padded to 8 frames (frame 7 is a dummy)."""
    pad = torch.zeros(1, 8, dtype=torch.bool)
    pad[0, 7] = True
    # unshifted windows {0, 1, 2, 3} and {4, 5, 6, 7}
    mask = ObjectTokenEncoder.window_attn_mask(pad, 4, 0)
    assert mask.shape == (2, 4, 4)
    assert mask[0].all()
    expected = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0],
                             [1, 1, 1, 1]]).bool()  # dummy sees itself only
    assert torch.equal(mask[1], expected)
    # shifted by ceil(4 / 2) = 2: windows hold frames {6, 7 | 0, 1} and
    # {2, 3, 4, 5}; 6 and 7 were wrapped around from the end
    assert ObjectTokenEncoder.shift_size(4) == 2
    mask = ObjectTokenEncoder.window_attn_mask(pad, 4, 2)
    expected = torch.tensor([
        [1, 0, 0, 0],  # frame 6: not the dummy, not across the wrap
        [1, 1, 0, 0],  # dummy 7: frame 6 and itself
        [0, 0, 1, 1],  # frame 0: frames 0, 1 only
        [0, 0, 1, 1],  # frame 1
    ]).bool()
    assert torch.equal(mask[0], expected)
    assert mask[1].all()
    # nothing to mask: no mask tensor at all (fast attention path)
    assert ObjectTokenEncoder.window_attn_mask(
        torch.zeros(2, 8, dtype=torch.bool), 4, 0) is None
    # odd W: shift ceil(5 / 2) = 3
    assert ObjectTokenEncoder.shift_size(5) == 3


def test_encoder_window_and_shift_by_perturbation():
    enc = encoder(window_size=4, num_layers=2).eval()
    enc.layers[0] = PassThrough()  # only layer 1 (odd: shifted at test)
    tokens = torch.randn(1, 7, 3, D)
    # unshifted windows {0..3}, {4, 5, 6} (+ masked dummy 7)
    assert changed_frames(enc, tokens, 2, shift=False) == [0, 1, 2, 3]
    assert changed_frames(enc, tokens, 6, shift=False) == [4, 5, 6]
    # shifted windows {6 | 0, 1} (wrapped boundary blocked) and {2..5}
    assert changed_frames(enc, tokens, 6, shift=True) == [6]
    assert changed_frames(enc, tokens, 0, shift=True) == [0, 1]
    assert changed_frames(enc, tokens, 2, shift=True) == [2, 3, 4, 5]
    # a padded frame (e.g. a shorter clip in the batch) is never seen
    pad = torch.zeros(1, 7, dtype=torch.bool)
    pad[0, 1] = True
    assert changed_frames(enc, tokens, 1, shift=False, padding_mask=pad) == [1]
    # default: shifted at inference, unshifted in training
    with torch.no_grad():
        assert torch.equal(enc(tokens), enc(tokens, shift=True))
        enc.train()
        assert torch.equal(enc(tokens), enc(tokens, shift=False))


def test_encoder_global_and_single_window():
    enc = encoder(window_size=0, num_layers=1).eval()
    tokens = torch.randn(2, 5, 3, D)
    assert enc(tokens).shape == (2, 5, 3, D)
    assert changed_frames(enc, tokens, 4, shift=True) == [0, 1, 2, 3, 4]
    # T <= W: one window, a shift would only cut it: same as unshifted
    enc = encoder(window_size=6, num_layers=2).eval()
    tokens = torch.randn(1, 4, 3, D)
    with torch.no_grad():
        assert torch.equal(enc(tokens, shift=True), enc(tokens, shift=False))


def test_decoder_shapes_slots_and_padding():
    torch.manual_seed(0)
    dec = ObjectTokenDecoder(
        embed_dims=D,
        num_queries=5,
        num_frame_queries=3,
        num_layers=2,
        num_heads=2,
        feedforward_channels=32)
    dec.init_weights()
    dec.eval()
    memory = torch.randn(2, 4, 3, D)
    out = dec(memory)
    assert out.shape == (2, 2, 5, D)
    # the shared output norm: zero mean, unit variance per query
    assert out.mean(-1).abs().max() < 1e-5
    # padded frames are not attended to
    pad = torch.zeros(2, 4, dtype=torch.bool)
    pad[:, 3] = True
    other = memory.clone()
    other[:, 3] += 5
    with torch.no_grad():
        assert torch.allclose(dec(memory, pad), dec(other, pad), atol=1e-6)
        assert not torch.allclose(dec(memory), dec(other), atol=1e-3)
    # explicit slots = default slots
    slots = torch.arange(3).expand(2, 4, 3)
    with torch.no_grad():
        assert torch.allclose(dec(memory, None, slots), dec(memory), atol=1e-6)
    with pytest.raises(ValueError, match='fq_pos'):
        dec(torch.randn(1, 2, 4, D))


def vita_aggregator_kwargs(embed_dims, num_frame_queries, num_queries, layers,
                           window_size, num_heads, ffn_channels, **kwargs):
    """Keyword arguments of a small :class:`VITAAggregator`: ``layers`` is
    (encoder layers, decoder layers), both of ``num_heads`` heads and
    ``ffn_channels`` feed-forward channels; ``kwargs`` are added last.
    Shared with test_teacher_vita.py."""
    cfg = dict(
        embed_dims=embed_dims,
        num_frame_queries=num_frame_queries,
        num_queries=num_queries,
        encoder=dict(
            type='ObjectTokenEncoder',
            num_layers=layers[0],
            window_size=window_size,
            num_heads=num_heads,
            feedforward_channels=ffn_channels),
        decoder=dict(
            type='ObjectTokenDecoder',
            num_layers=layers[1],
            num_heads=num_heads,
            feedforward_channels=ffn_channels))
    cfg.update(kwargs)
    return cfg


def vita(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='VITAAggregator',
        **vita_aggregator_kwargs(D, 6, 4, (2, 3), 3, 2, 32))
    cfg.update(kwargs)
    agg = MODELS.build(cfg)
    agg.init_weights()
    return agg


def test_vita_aggregator_outputs():
    agg = vita().eval()
    assert isinstance(agg, VITAAggregator) and not agg.needs_token_targets
    frame_queries = torch.randn(2, 5, 6, D)
    out = agg(frame_queries)
    assert out['queries'].shape == (3, 2, 4, D)
    assert out['frame_assoc'].shape == (3, 2, 4, 5, 6)
    assert torch.allclose(out['frame_assoc'].sum(-1), torch.ones(3, 2, 4, 5))
    assert out['query_mask'].shape == (2, 4) and out['query_mask'].all()
    last = agg(frame_queries, last_layer_only=True)
    assert last['queries'].shape == (1, 2, 4, D)
    assert torch.allclose(last['queries'][0], out['queries'][-1])
    # every parameter is trained by a loss on queries + association
    agg.train()
    out = agg(frame_queries)
    (out['queries'].sum() + out['frame_assoc'].pow(2).sum()).backward()
    assert all(p.grad is not None for p in agg.parameters())


def test_vita_aggregator_topk_selection():
    agg = vita(frame_query_select='topk', topk=2).eval()
    frame_queries = torch.randn(1, 4, 6, D)
    scores = torch.randn(1, 4, 6, 3)
    out = agg(frame_queries, frame_scores=scores)
    assoc = out['frame_assoc']
    assert assoc.shape == (3, 1, 4, 4, 6)
    top2 = scores.max(-1)[0].topk(2, -1)[1]  # (1, 4, 2)
    selected = torch.zeros(1, 4, 6, dtype=torch.bool)
    selected.scatter_(-1, top2, True)
    # weight only on each frame's 2 best queries, rows still sum to 1
    assert (assoc[:, :, :, ~selected[0]] == 0).all()
    assert torch.allclose(assoc.sum(-1), torch.ones(3, 1, 4, 4))
    # the unselected queries do not matter at all
    other = frame_queries.clone()
    other[~selected] += 3
    with torch.no_grad():
        assert torch.allclose(
            agg(other, frame_scores=scores)['queries'],
            out['queries'],
            atol=1e-6)
    with pytest.raises(ValueError, match='frame_scores'):
        agg(frame_queries)
    with pytest.raises(ValueError, match='topk'):
        vita(frame_query_select='topk')


def test_token_average_hand_checked():
    agg = MODELS.build(dict(type='TokenAverageAggregator'))
    assert isinstance(agg, TokenAverageAggregator)
    assert agg.needs_token_targets and list(agg.parameters()) == []
    # 1 clip, 3 frames, 4 queries, 2 channels; token value = (10 t + q, t)
    t_idx, q_idx = torch.meshgrid(
        torch.arange(3.), torch.arange(4.), indexing='ij')
    frame_queries = torch.stack([10 * t_idx + q_idx, t_idx], -1)[None]
    targets = torch.full((1, 3, 4), -1)
    targets[0, 0, 1] = 0  # instance 0: q1 @ t0, q2 @ t1, q0 @ t2
    targets[0, 1, 2] = 0
    targets[0, 2, 0] = 0
    targets[0, 0, 3] = 1  # instance 1: q3 @ t0 and t2 (absent at t1)
    targets[0, 2, 3] = 1
    out = agg(frame_queries, token_targets=targets)
    expected = torch.tensor([[(1 + 12 + 20) / 3, 1.0], [(3 + 23) / 2, 1.0]])
    assert out['queries'].shape == (1, 1, 2, 2)
    assert torch.allclose(out['queries'][0, 0], expected)
    assoc = out['frame_assoc'][0, 0]  # (M, T, Q)
    assert torch.equal(assoc[0, 0], torch.tensor([0., 1., 0., 0.]))
    assert torch.equal(assoc[1, 2], torch.tensor([0., 0., 0., 1.]))
    assert torch.allclose(assoc[1, 1], torch.full((4, ), 0.25))  # absent
    assert out['query_mask'].tolist() == [[True, True]]
    # a padded frame's tokens are ignored
    pad = torch.tensor([[False, False, True]])
    out = agg(frame_queries, padding_mask=pad, token_targets=targets)
    assert torch.allclose(out['queries'][0, 0, 0], torch.tensor([6.5, 0.5]))
    assert torch.allclose(out['queries'][0, 0, 1], torch.tensor([3., 0.]))
    # batch: the second clip has one instance; padded slot masked
    targets2 = torch.full((2, 3, 4), -1)
    targets2[0] = targets[0]
    targets2[1, 1, 1] = 0
    out = agg(frame_queries.expand(2, -1, -1, -1), token_targets=targets2)
    assert out['query_mask'].tolist() == [[True, True], [True, False]]
    assert torch.allclose(out['queries'][0, 1, 0], torch.tensor([11., 1.]))
    with pytest.raises(ValueError, match='token_targets'):
        agg(frame_queries)
    assert 'per_frame_queries' not in out


def test_token_average_frame_readout_is_each_frames_own_token():
    agg = TokenAverageAggregator(frame_readout=True)
    t_idx, q_idx = torch.meshgrid(
        torch.arange(3.), torch.arange(4.), indexing='ij')
    frame_queries = torch.stack([10 * t_idx + q_idx, t_idx], -1)[None]
    targets = torch.full((1, 3, 4), -1)
    targets[0, 0, 1] = targets[0, 1, 2] = targets[0, 2, 0] = 0
    targets[0, 0, 3] = targets[0, 2, 3] = 1  # absent at t1
    out = agg(frame_queries, token_targets=targets)
    per_frame = out['per_frame_queries'][0, 0]  # (M, T, D)
    assert per_frame.shape == (2, 3, 2)
    # instance 0: q1 @ t0, q2 @ t1, q0 @ t2
    assert torch.equal(per_frame[0],
                       torch.tensor([[1., 0.], [12., 1.], [20., 2.]]))
    # instance 1: its own tokens, the clip mean where it is absent
    assert torch.equal(per_frame[1, 0], torch.tensor([3., 0.]))
    assert torch.equal(per_frame[1, 2], torch.tensor([23., 2.]))
    assert torch.allclose(per_frame[1, 1], out['queries'][0, 0, 1])
    assert out['presence'][0, 0, 1].tolist() == [1., 0., 1.]
    # class and f_off stay the clip mean
    assert torch.allclose(out['queries'][0, 0, 0],
                          torch.tensor([(1 + 12 + 20) / 3, 1.0]))


def test_query_readout_starts_as_the_associated_frame_queries():
    agg = vita(query_readout=True).eval()
    frame_queries = torch.randn(2, 5, 6, D)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[1, 3:] = True  # clip 1 has 3 real frames
    with torch.no_grad():
        out = agg(frame_queries, padding_mask=padding)
    assoc = out['frame_assoc']
    assert torch.allclose(out['frame_assoc_log'].exp(), assoc)
    # gate 0 at init: association-weighted frame queries, mean over the
    # valid frames only (hand-written loops)
    for b, num_valid in ((0, 5), (1, 3)):
        for n in range(4):
            expect = sum(assoc[-1, b, n, t] @ frame_queries[b, t]
                         for t in range(num_valid)) / num_valid
            assert torch.allclose(out['queries'][-1, b, n], expect, atol=1e-5)
    # a one-hot association reads out exactly the picked frame queries
    picked = torch.zeros(1, 1, 1, 2, 3)
    picked[..., 0, 2] = picked[..., 1, 0] = 1
    tokens = torch.randn(1, 2, 3, D)
    assert torch.allclose(
        VITAAggregator.readout(picked, tokens)[0, 0, 0],
        (tokens[0, 0, 2] + tokens[0, 1, 0]) / 2)
    # the decoder output enters through the gate, which is trained
    agg.train()
    out = agg(frame_queries)
    (out['queries'].sum() + out['frame_assoc'].pow(2).sum()).backward()
    assert agg.readout_gate.grad is not None
    assert agg.readout_gate.grad.abs().sum() > 0


def test_log_association_is_minus_inf_on_dropped_queries():
    agg = vita(frame_query_select='topk', topk=2).eval()
    out = agg(torch.randn(1, 4, 6, D), frame_scores=torch.randn(1, 4, 6))
    log_assoc = out['frame_assoc_log']
    dropped = out['frame_assoc'] == 0
    assert torch.isneginf(log_assoc[dropped]).all()
    assert torch.isfinite(log_assoc[~dropped]).all()
