# Copyright (c) mmookd contributors. All rights reserved.
"""Companion distillation losses of papers A (ETC) and B (deformable
attention KD): behavioural checks (docs/companion_losses.md, "Tests") and their
use from a plain mmdet config. Small random tensors, CPU, no models."""
import textwrap

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

import mmookd.models  # noqa: F401  (registers the losses)
from mmookd.models.losses import (
    AttentionCKALoss,
    CrossFrameAffinityDistillLoss,
    InstanceTemporalConsistencyLoss,
    InterIntraObjectDistillLoss,
    MotionGuidedTemporalLoss,
    PairwiseSimilarityDistillLoss,
    PixelKLDistillLoss,
    cross_frame_affinity_loss,
)
from mmookd.models.losses.cka_loss import cka
from mmookd.models.losses.object_relation_loss import (
    inter_relation_loss,
    intra_relation_loss,
)


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def rand(*shape, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    return x.requires_grad_(grad)


def orthogonal(n, seed=0):
    q, _ = torch.linalg.qr(rand(n, n, seed=seed).double())
    return q.float()


def student_only_grad(loss_fn, pred, target, *extra):
    """The loss's gradient reaches the student input, never the teacher."""
    pred = pred.clone().requires_grad_(True)
    target = target.clone().requires_grad_(True)
    loss = loss_fn(pred, *extra, target) if extra else loss_fn(pred, target)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None


# ----------------------------------------------------------------------
# A2: pixel-wise KL
# ----------------------------------------------------------------------
def test_pixel_kl_zero_when_equal_and_etc_reduction():
    x = rand(5, 7)
    for mode in ('softmax', 'sigmoid'):
        loss = PixelKLDistillLoss(mode=mode)
        assert loss(x, x.clone()).item() == pytest.approx(0, abs=1e-7)
    s, t = rand(4, 6, seed=1), rand(4, 6, seed=2)
    # ETC: nn.KLDivLoss() (mean over all elements) on log-softmax inputs
    ref = F.kl_div(F.log_softmax(s, -1), F.softmax(t, -1), reduction='mean')
    assert PixelKLDistillLoss()(s, t).item() == pytest.approx(
        ref.item(), rel=1e-5)
    batchmean = PixelKLDistillLoss(reduction='batchmean')(s, t)
    assert batchmean.item() == pytest.approx(ref.item() * 6, rel=1e-5)
    # sigmoid: binary KL of each element (masks)
    m_s, m_t = rand(3, 8, 8, seed=3), rand(3, 8, 8, seed=4)
    p, q = m_t.sigmoid(), m_s.sigmoid()
    ref = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).mean()
    got = PixelKLDistillLoss(mode='sigmoid')(m_s, m_t)
    assert got.item() == pytest.approx(ref.item(), rel=1e-4)
    assert PixelKLDistillLoss(
        mode='sigmoid', reduction='none')(m_s, m_t).shape == (3, )
    student_only_grad(PixelKLDistillLoss(mode='sigmoid'), m_s, m_t)
    # rows are pairs: a joint permutation keeps the loss, a student-only
    # one changes it
    perm = torch.tensor([2, 0, 1])
    loss = PixelKLDistillLoss(mode='sigmoid')
    assert torch.allclose(loss(m_s[perm], m_t[perm]), loss(m_s, m_t))
    assert not torch.allclose(loss(m_s[perm], m_t), loss(m_s, m_t))


# ----------------------------------------------------------------------
# A1: motion-guided temporal loss (+ flow-free variant)
# ----------------------------------------------------------------------
def square(h=24, w=32, x0=8, y0=6, size=8):
    img = torch.zeros(1, 1, h, w)
    img[..., y0:y0 + size, x0:x0 + size] = 1.0
    return img


def test_temporal_loss_zero_flow_identical_frames_is_zero():
    pred = rand(2, 3, 12, 16)
    img = rand(2, 3, 12, 16, seed=1)
    flow = torch.zeros(2, 2, 12, 16)
    for kwargs in (dict(),
                   dict(
                       activation='sigmoid',
                       occ_mode='l1',
                       mask_power=1,
                       oob_zero=True,
                       resolution='pred')):
        loss = MotionGuidedTemporalLoss(**kwargs)
        out = loss(pred, pred.clone(), flow, img, img)
        assert out.item() == pytest.approx(0, abs=1e-10)


def test_temporal_loss_integer_translation_is_recovered_exactly():
    """Frame t' is frame t moved by (+3, +2): with that flow the warped t'
    prediction is t's, so the loss is 0 where the source is inside."""
    dx, dy = 3, 2
    mask_t = square() * 8 - 4  # logits
    mask_ref = torch.roll(mask_t, shifts=(dy, dx), dims=(2, 3))
    flow = torch.zeros(1, 2, 24, 32)
    flow[:, 0], flow[:, 1] = dx, dy
    loss = MotionGuidedTemporalLoss(
        activation='sigmoid', occ_mode='none', oob_zero=True)
    assert loss(mask_t, mask_ref, flow).item() == pytest.approx(0, abs=1e-9)
    # a wrong flow leaves an error
    assert loss(mask_t, mask_ref, torch.zeros_like(flow)).item() > 1e-3


def test_temporal_loss_occlusion_weight_and_oob():
    from mmookd.models.flow import photometric_occlusion
    img, other = rand(2, 3, 8, 8), rand(2, 3, 8, 8, seed=1)
    for mode in ('l1', 'signed_sum'):
        occ = photometric_occlusion(img, other, mode)
        assert occ.shape == (2, 1, 8, 8)
        assert (occ > 0).all() and (occ <= 1).all()
        assert torch.equal(
            photometric_occlusion(img, img, mode), torch.ones_like(occ))
    # all sources outside the frame: zero weight with oob_zero only
    pred, pred_ref = rand(1, 2, 8, 8), rand(1, 2, 8, 8, seed=2)
    flow = torch.full((1, 2, 8, 8), 100.0)
    on = MotionGuidedTemporalLoss(occ_mode='none', oob_zero=True)
    off = MotionGuidedTemporalLoss(occ_mode='none', oob_zero=False)
    assert on(pred, pred_ref, flow).item() == 0
    assert off(pred, pred_ref, flow).item() > 0


def test_temporal_loss_code_form_and_resolutions():
    """Defaults are ETC's code: mean[(O Z_t - O Z_hat)^2] with O from the
    signed channel sum, predictions upsampled to the flow size."""
    pred, pred_ref = rand(1, 4, 8, 8), rand(1, 4, 8, 8, seed=1)
    img, img_ref = rand(1, 3, 8, 8, seed=2), rand(1, 3, 8, 8, seed=3)
    flow = torch.zeros(1, 2, 8, 8)
    occ = torch.exp(-(img - img_ref).sum(1, keepdim=True).abs())
    ref = F.mse_loss(occ * pred, occ * pred_ref)
    got = MotionGuidedTemporalLoss(loss_weight=1.0)(pred, pred_ref, flow, img,
                                                    img_ref)
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)
    # flow at 4x the prediction size: both resolutions work
    flow_big = torch.zeros(1, 2, 32, 32)
    for res in ('input', 'pred'):
        loss = MotionGuidedTemporalLoss(resolution=res)
        out = loss(pred, pred_ref, flow_big, rand(1, 3, 32, 32),
                   rand(1, 3, 32, 32, seed=1))
        assert out.dim() == 0 and torch.isfinite(out)
    # gradients flow into both frames (code), or only t with detach_target
    p, q = pred.clone().requires_grad_(), pred_ref.clone().requires_grad_()
    MotionGuidedTemporalLoss()(p, q, flow).backward()
    assert p.grad.abs().sum() > 0 and q.grad.abs().sum() > 0
    p, q = pred.clone().requires_grad_(), pred_ref.clone().requires_grad_()
    MotionGuidedTemporalLoss(detach_target=True)(p, q, flow).backward()
    assert p.grad.abs().sum() > 0 and q.grad is None


def test_instance_temporal_consistency_is_flow_free():
    x = rand(3, 16)
    for metric in ('cosine', 'mse'):
        loss = InstanceTemporalConsistencyLoss(metric=metric)
        assert loss(x, x.clone()).item() == pytest.approx(0, abs=1e-6)
        assert loss(x, rand(3, 16, seed=1)).item() > 0
    cls = InstanceTemporalConsistencyLoss(metric='mse', activation='sigmoid')
    assert cls(x, x + 0.1).item() > 0
    p, q = x.clone().requires_grad_(), rand(3, 16, seed=1).requires_grad_()
    InstanceTemporalConsistencyLoss(detach_ref=True)(p, q).backward()
    assert p.grad is not None and q.grad is None


# ----------------------------------------------------------------------
# A3 / A4: pair-wise and pair-wise-frames similarity
# ----------------------------------------------------------------------
def test_pairwise_similarity_dense_and_query():
    loss = PairwiseSimilarityDistillLoss(pool_kernel=2)
    feats_s, feats_t = rand(2, 8, 8, 12), rand(2, 16, 8, 12, seed=1)
    assert loss(feats_s, feats_s.clone()).item() == 0
    # teacher channels may differ; orthogonal channel maps change nothing
    out = loss(feats_s, feats_t)
    rot = torch.einsum('bchw,cd->bdhw', feats_t, orthogonal(16))
    assert torch.allclose(loss(feats_s, rot * 3.0), out, atol=1e-6)
    # query version: matched rows; joint permutation invariant, student-only
    # permutation not
    q_s, q_t = rand(5, 32), rand(5, 64, seed=2)
    query = PairwiseSimilarityDistillLoss()
    perm = torch.tensor([3, 1, 4, 0, 2])
    assert torch.allclose(query(q_s[perm], q_t[perm]), query(q_s, q_t))
    assert not torch.allclose(query(q_s[perm], q_t), query(q_s, q_t))
    student_only_grad(query, q_s, q_t)
    with pytest.raises(ValueError, match='correspond'):
        query(q_s, q_t[:4])


def test_cross_frame_affinity_dense_query_and_legacy():
    loss = CrossFrameAffinityDistillLoss()
    s, s_ref = rand(4, 16), rand(3, 16, seed=1)  # K = 4, K' = 3
    t, t_ref = rand(4, 32, seed=2), rand(3, 32, seed=3)
    assert loss(s, s_ref, s.clone(), s_ref.clone()).item() == 0
    out = loss(s, s_ref, t, t_ref)
    assert out.item() > 0
    # a joint permutation of a frame's rows keeps the loss
    perm = torch.tensor([2, 0, 1])
    assert torch.allclose(loss(s, s_ref[perm], t, t_ref[perm]), out)
    assert not torch.allclose(loss(s, s_ref[perm], t, t_ref), out)
    kl = CrossFrameAffinityDistillLoss(mode='kl', tau=0.1)
    assert kl(s, s_ref, s, s_ref).item() == pytest.approx(0, abs=1e-6)
    assert kl(s, s_ref, t, t_ref).item() > 0
    # gradients reach the student's two frames only
    ps, pr = s.clone().requires_grad_(), s_ref.clone().requires_grad_()
    ts, tr = t.clone().requires_grad_(), t_ref.clone().requires_grad_()
    loss(ps, pr, ts, tr).backward()
    assert ps.grad is not None and pr.grad is not None
    assert ts.grad is None and tr.grad is None
    # dense maps; ETC's transposed normaliser reproduced with legacy_norm
    f, f_ref = rand(1, 6, 3, 4, seed=4), rand(1, 6, 3, 4, seed=5)
    x = f.flatten(2).transpose(1, 2)[0]
    x_ref = f_ref.flatten(2).transpose(1, 2)[0]
    by_hand = torch.empty(12, 12)
    for i in range(12):
        for j in range(12):
            by_hand[i, j] = x[i] @ x_ref[j] / (x_ref[i].norm() * x[j].norm())
    legacy = cross_frame_affinity_loss.legacy_cross_frame_affinity(
        x[None], x_ref[None])[0]
    assert torch.allclose(legacy, by_hand, atol=1e-5)
    intended = CrossFrameAffinityDistillLoss().affinity(f, f_ref)[0]
    assert torch.allclose(legacy.diagonal(), intended.diagonal(), atol=1e-5)
    assert not torch.allclose(legacy, intended)
    old = CrossFrameAffinityDistillLoss(legacy_norm=True)
    assert old(f, f_ref, f, f_ref).item() == 0


# ----------------------------------------------------------------------
# B1: CKA
# ----------------------------------------------------------------------
@pytest.mark.parametrize('kernel', ['linear', 'rbf'])
def test_cka_identity_scaling_orthogonal_and_symmetry(kernel):
    x = rand(20, 12)
    y = rand(20, 30, seed=1)  # different number of keys (columns)
    assert cka(x, x, kernel).item() == pytest.approx(1, abs=1e-5)
    base = cka(x, y, kernel)
    assert 0 <= base.item() <= 1
    assert cka(x, 7.5 * y, kernel).item() == pytest.approx(
        base.item(), abs=1e-5)
    assert cka(x, y @ orthogonal(30), kernel).item() == pytest.approx(
        base.item(), abs=1e-5)
    assert cka(x, y[:, torch.randperm(30)], kernel).item() == pytest.approx(
        base.item(), abs=1e-5)
    assert cka(y, x, kernel).item() == pytest.approx(base.item(), abs=1e-5)
    loss = AttentionCKALoss(kernel=kernel)
    assert loss(x, x.clone()).item() == pytest.approx(0, abs=1e-5)
    assert 0 <= loss(x, y).item() <= 1


def test_cka_forms_agree_constant_rows_and_unbiased():
    x, y = rand(3, 40, 6), rand(3, 40, 9, seed=1)
    gram = cka(x, y, form='gram')
    feature = cka(x, y, form='feature')
    assert torch.allclose(gram, feature, atol=1e-5)
    # constant rows: finite, loss 0
    const = torch.ones(10, 5)
    loss = AttentionCKALoss()
    assert loss(const, rand(10, 7)).item() == 0
    ub = cka(x, y, unbiased=True)
    assert ub.shape == (3, ) and torch.isfinite(ub).all()
    assert cka(x, x, unbiased=True) == pytest.approx(1, abs=1e-5)
    with pytest.raises(ValueError, match='n > 3'):
        cka(x[:, :3], y[:, :3], unbiased=True)
    # batched items, per-item losses
    per_item = AttentionCKALoss(reduction='none')(x, y)
    assert per_item.shape == (3, )


def test_cka_attention_maps_with_different_key_counts():
    """Teacher attends over 96 keys, student over 40; rows are the same
    tokens: gradients reach the student's maps only."""
    pred = rand(2, 16, 40).softmax(-1)
    target = rand(2, 16, 96, seed=1).softmax(-1)
    loss = AttentionCKALoss()
    out = loss(pred, target)
    assert out.shape == () and 0 <= out.item() <= 1
    student_only_grad(loss, pred, target)
    with pytest.raises(ValueError, match='same rows'):
        loss(pred, target[:, :15])


# ----------------------------------------------------------------------
# B2: intra- / inter-object relations
# ----------------------------------------------------------------------
def test_object_relation_loss_properties():
    loss = InterIntraObjectDistillLoss(background_logit=0.0)
    z_s, z_t = rand(50, 3), rand(50, 3, seed=1)  # 50 pixels, 3 objects
    assert loss(z_s, z_s.clone()).item() == pytest.approx(0, abs=1e-6)
    out = loss(z_s, z_t)
    assert 0 < out.item() <= 4
    # joint permutations of objects or pixels keep the loss
    obj, pix = torch.tensor([2, 0, 1]), torch.randperm(50)
    assert torch.allclose(loss(z_s[:, obj], z_t[:, obj]), out, atol=1e-6)
    assert torch.allclose(loss(z_s[pix], z_t[pix]), out, atol=1e-6)
    student_only_grad(loss, z_s, z_t)
    # the relation terms: positive affine invariance, range [0, 2]
    ys, yt = z_s.softmax(-1), z_t.softmax(-1)
    scale = torch.rand(50, 1) + 0.5
    assert inter_relation_loss(ys * scale + 0.3, yt) == pytest.approx(
        inter_relation_loss(ys, yt).item(), abs=1e-5)
    col = torch.rand(1, 3) + 0.5
    assert intra_relation_loss(ys * col - 0.2, yt) == pytest.approx(
        intra_relation_loss(ys, yt).item(), abs=1e-5)
    for term in (inter_relation_loss, intra_relation_loss):
        assert 0 <= term(ys, yt).item() <= 2
        assert term(ys, -ys).item() == pytest.approx(2, abs=1e-5)
    # one object + background is a 2-way distribution: inter skipped
    single = InterIntraObjectDistillLoss(
        background_logit=0.0, intra_weight=0.0)
    assert single(rand(20, 1), rand(20, 1, seed=1)).item() == 0


# ----------------------------------------------------------------------
# every loss from a plain mmdet config through custom_imports
# ----------------------------------------------------------------------
def test_losses_build_from_plain_mmdet_config(tmp_path):
    """A plain mmdet config (mmdet base, ``custom_imports``) builds every
    companion component with mmdet's registries (the fresh-interpreter
    route of custom_imports is tested in tests/test_plugin)."""
    from mmdet.registry import METRICS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg_file = tmp_path / 'plain_cfg.py'
    cfg_file.write_text(
        textwrap.dedent("""
        _base_ = 'mmdet::_base_/default_runtime.py'
        custom_imports = dict(imports=['mmookd'], allow_failed_imports=False)
        losses = [
            dict(type='MotionGuidedTemporalLoss', activation='sigmoid'),
            dict(type='InstanceTemporalConsistencyLoss'),
            dict(type='PixelKLDistillLoss', mode='sigmoid'),
            dict(type='PairwiseSimilarityDistillLoss', pool_kernel=2),
            dict(type='CrossFrameAffinityDistillLoss', mode='kl'),
            dict(type='AttentionCKALoss', kernel='rbf'),
            dict(type='InterIntraObjectDistillLoss', background_logit=0.),
        ]
        flows = [dict(type='ZeroFlowProvider'), dict(type='BoxFlowProvider')]
        tc = dict(type='TemporalConsistencyMetric',
                  flow=dict(type='ZeroFlowProvider'))
        """))
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.default_scope == 'mmdet'
    init_default_scope(cfg.default_scope)
    x, r = rand(2, 3, 8, 8), rand(4, 6)
    calls = [(x, x, torch.zeros(2, 2, 8, 8)), (r, r), (r, r), (x, x),
             (r, r, r, r), (r, r), (r, r)]
    for loss_cfg, args in zip(cfg.losses, calls):
        loss = MODELS.build(loss_cfg)
        assert type(loss).__name__ == loss_cfg.type
        assert loss(*args).item() == pytest.approx(0, abs=1e-5)
    assert [type(MODELS.build(c)).__name__
            for c in cfg.flows] == ['ZeroFlowProvider', 'BoxFlowProvider']
    assert type(METRICS.build(cfg.tc)).__name__ == 'TemporalConsistencyMetric'
