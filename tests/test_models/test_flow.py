# Copyright (c) mmookd contributors. All rights reserved.
"""Flow sources and warping for paper A's temporal loss and TC metric:
warping moves a synthetic square by the given flow; providers load local
weights only and follow one convention."""
import sys
import types

import pytest
import torch
from mmdet.registry import MODELS
from torch import nn

import mmookd.models  # noqa: F401
from mmookd.models.flow import (
    BoxFlowProvider,
    RAFTFlowProvider,
    TorchScriptFlowProvider,
    ZeroFlowProvider,
    fb_consistency_mask,
    resize_flow,
    warp,
)


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


def square_img(x0, y0, size=6, h=20, w=24):
    img = torch.zeros(1, 1, h, w)
    img[..., y0:y0 + size, x0:x0 + size] = 1.0
    return img


@pytest.mark.parametrize('dx,dy', [(3, 2), (-4, 1), (0, -3)])
def test_warp_moves_a_square_by_the_flow(dx, dy):
    """Frame t' has the square moved by (dx, dy); the flow t -> t' is
    (dx, dy) everywhere; warping t' with it gives back frame t."""
    frame_t = square_img(8, 7)
    frame_ref = square_img(8 + dx, 7 + dy)
    flow = torch.zeros(1, 2, 20, 24)
    flow[:, 0], flow[:, 1] = dx, dy
    warped, valid = warp(frame_ref, flow, return_valid=True)
    assert torch.allclose(warped, frame_t, atol=1e-5)
    # sources outside the frame are flagged
    assert valid.shape == (1, 1, 20, 24)
    inside_y = valid[0, 0, 5:15]  # rows whose source row is inside
    if dx > 0:
        assert not inside_y[:, -dx:].any() and inside_y[:, :-dx].all()
    elif dx < 0:
        assert not inside_y[:, :-dx].any() and inside_y[:, -dx:].all()
    assert torch.equal(warp(frame_ref, flow, mode='nearest'), frame_t)
    # half-pixel flow in x: bilinear interpolation of the neighbours
    half_flow = flow.clone()
    half_flow[:, 0] -= 0.5
    half = warp(frame_ref, half_flow)
    assert half[0, 0, 9, 10].item() == pytest.approx(1.0)  # inside
    assert half[0, 0, 9, 8].item() == pytest.approx(0.5)  # left edge
    assert half[0, 0, 9, 14].item() == pytest.approx(0.5)  # right edge


def test_resize_flow_rescales_vectors():
    flow = torch.zeros(1, 2, 12, 20)
    flow[:, 0], flow[:, 1] = 8.0, -4.0
    small = resize_flow(flow, (3, 5))  # stride 4
    assert small.shape == (1, 2, 3, 5)
    assert torch.allclose(small[:, 0], torch.full((1, 3, 5), 2.0))
    assert torch.allclose(small[:, 1], torch.full((1, 3, 5), -1.0))
    assert resize_flow(flow, (12, 20)) is flow


def test_forward_backward_consistency():
    fw = torch.zeros(1, 2, 10, 10)
    fw[:, 0] = 2.0
    ok = fb_consistency_mask(fw, -fw)
    assert ok[0, 0, :, :8].all() and not ok[0, 0, :, 8:].any()  # oob
    assert not fb_consistency_mask(fw, fw)[0, 0, :, :8].any()


def test_box_flow_moves_and_scales_the_instance():
    """Box (4, 4, 12, 12) at t, (10, 6, 26, 22) at t' (moved and 2x): the
    box flow warps the t' mask back onto the t mask."""
    provider = MODELS.build(dict(type='BoxFlowProvider'))
    assert provider.input_type == 'boxes'
    boxes = torch.tensor([[4., 4., 12., 12.]])
    boxes_ref = torch.tensor([[10., 6., 26., 22.]])
    mask_t = torch.zeros(1, 1, 32, 32)
    mask_t[..., 4:12, 4:12] = 1
    mask_ref = torch.zeros(1, 1, 32, 32)
    mask_ref[..., 6:22, 10:26] = 1
    flow = provider(boxes, boxes_ref, (32, 32), stride=1)
    assert flow.shape == (1, 2, 32, 32)
    warped = warp(mask_ref, flow, mode='nearest')
    assert torch.equal(warped, mask_t)
    # at stride 4 (mask resolution) the vectors are in grid pixels
    flow4 = provider(boxes, boxes_ref, (8, 8), stride=4)
    assert torch.allclose(flow4, resize_flow(flow, (8, 8)), atol=0.2)
    assert isinstance(provider, BoxFlowProvider)


def test_zero_flow_and_frozen_providers():
    provider = ZeroFlowProvider().train()
    assert not provider.training
    imgs = torch.rand(2, 3, 12, 20) * 255
    flow = provider(imgs, imgs)
    assert flow.shape == (2, 2, 12, 20) and not flow.any()
    with pytest.raises(ValueError, match='img1 and img2'):
        provider(imgs, imgs[:1])


class _MeanShiftFlow(nn.Module):
    """A scriptable stand-in flow net: returns two 'iterations', the last
    being (mean of img1, 1) everywhere."""

    def forward(self, img1: torch.Tensor, img2: torch.Tensor):
        n, _, h, w = img1.shape
        first = torch.zeros(n, 2, h, w)
        last = torch.ones(n, 2, h, w)
        last[:, 0] = img1.mean()
        return [first, last]


def test_torchscript_provider_loads_a_local_file(tmp_path):
    path = str(tmp_path / 'flow.pt')
    torch.jit.save(torch.jit.script(_MeanShiftFlow()), path)
    provider = MODELS.build(
        dict(type='TorchScriptFlowProvider', checkpoint=path))
    assert isinstance(provider, TorchScriptFlowProvider)
    assert not any(p.requires_grad for p in provider.parameters())
    imgs = torch.full((1, 3, 13, 21), 255.0)  # not multiples of 8
    flow = provider(imgs, imgs)
    assert flow.shape == (1, 2, 13, 21)  # padded, then cropped back
    assert torch.allclose(flow[:, 0], torch.ones(1, 13, 21))  # 255 -> 1
    assert torch.allclose(flow[:, 1], torch.ones(1, 13, 21))  # last iter
    with pytest.raises(FileNotFoundError, match='nope.pt'):
        TorchScriptFlowProvider(str(tmp_path / 'nope.pt'))


def test_raft_provider_needs_a_local_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='raft_small.pth'):
        MODELS.build(
            dict(
                type='RAFTFlowProvider',
                checkpoint=str(tmp_path / 'raft_small.pth')))
    with pytest.raises(ValueError, match='arch'):
        RAFTFlowProvider(str(tmp_path / 'x.pth'), arch='raft_huge')


def test_raft_provider_loading_and_preprocessing(tmp_path, monkeypatch):
    """torchvision's RAFT interface, stood in by a tiny module (torchvision
    may be absent): built with ``weights=None``, state dict loaded strictly
    from the local file, inputs in [-1, 1] padded to multiples of 8, the
    last prediction returned."""
    seen = {}

    class FakeRAFT(nn.Module):

        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.zeros(1))

        def forward(self, img1, img2, num_flow_updates=12):
            seen.update(
                shape=tuple(img1.shape),
                range=(img1.min().item(), img1.max().item()),
                updates=num_flow_updates)
            n, _, h, w = img1.shape
            flow = self.scale * torch.ones(n, 2, h, w)
            return [flow * 0, flow]

    def raft_small(weights=None):
        assert weights is None
        return FakeRAFT()

    optical_flow = types.ModuleType('torchvision.models.optical_flow')
    optical_flow.raft_small = raft_small
    models = types.ModuleType('torchvision.models')
    models.optical_flow = optical_flow
    torchvision = types.ModuleType('torchvision')
    torchvision.models = models
    monkeypatch.setitem(sys.modules, 'torchvision', torchvision)
    monkeypatch.setitem(sys.modules, 'torchvision.models', models)
    monkeypatch.setitem(sys.modules, 'torchvision.models.optical_flow',
                        optical_flow)
    path = str(tmp_path / 'raft_small.pth')
    torch.save(dict(scale=torch.tensor([2.5])), path)
    provider = RAFTFlowProvider(path, num_flow_updates=6)
    img1 = torch.zeros(1, 3, 30, 41)
    img2 = torch.full((1, 3, 30, 41), 255.0)
    flow = provider(img1, img2)
    assert seen == dict(shape=(1, 3, 32, 48), range=(-1.0, -1.0), updates=6)
    assert flow.shape == (1, 2, 30, 41)
    assert torch.allclose(flow, torch.full_like(flow, 2.5))
    torch.save(dict(wrong=torch.zeros(1)), path)
    with pytest.raises(RuntimeError):
        RAFTFlowProvider(path)


def test_real_torchvision_raft_small_builds_without_weights(tmp_path):
    optical_flow = pytest.importorskip('torchvision.models.optical_flow')
    model = optical_flow.raft_small(weights=None)
    path = str(tmp_path / 'raft_small.pth')
    torch.save(model.state_dict(), path)
    provider = RAFTFlowProvider(path, num_flow_updates=2)
    flow = provider(
        torch.rand(1, 3, 64, 72) * 255,
        torch.rand(1, 3, 64, 72) * 255)
    assert flow.shape == (1, 2, 64, 72) and torch.isfinite(flow).all()


def textured_pair(dx: int, dy: int):
    """A smooth random texture and a copy whose content moved (dx, dy)."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randint(0, 255, (1, 3, 64, 80), generator=gen).float()
    img1 = torch.nn.functional.avg_pool2d(base, 5, 1, 2)
    return img1, torch.roll(img1, shifts=(dy, dx), dims=(2, 3))


@pytest.mark.parametrize('method', ['dis', 'farneback'])
def test_opencv_flow_recovers_a_known_shift(method):
    img1, img2 = textured_pair(3, 2)
    provider = MODELS.build(dict(type='OpenCVFlowProvider', method=method))
    flow = provider(img1, img2)
    assert flow.shape == (1, 2, 64, 80) and flow.dtype == torch.float32
    inner = flow[0, :, 10:-10, 10:-10]
    assert torch.allclose(inner[0].mean(), torch.tensor(3.0), atol=0.1)
    assert torch.allclose(inner[1].mean(), torch.tensor(2.0), atol=0.1)
    # warping frame 2 back with it reproduces frame 1 (convention of warp)
    err = (warp(img2, flow) - img1)[..., 10:-10, 10:-10].abs().mean()
    assert err < 0.1 * (img2 - img1)[..., 10:-10, 10:-10].abs().mean()


def test_opencv_flow_rejects_bad_options_and_inputs():
    with pytest.raises(ValueError, match='method'):
        MODELS.build(dict(type='OpenCVFlowProvider', method='raft'))
    with pytest.raises(ValueError, match='preset'):
        MODELS.build(dict(type='OpenCVFlowProvider', preset='slow'))
    provider = MODELS.build(dict(type='OpenCVFlowProvider'))
    with pytest.raises(ValueError, match='RGB'):
        provider(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
