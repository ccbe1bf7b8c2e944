# Copyright (c) mmookd contributors. All rights reserved.
"""PIL-bilinear resizing, as detectron2's ``ResizeShortestEdge`` does it.

detectron2 resizes uint8 images with ``PIL.Image.resize(..., BILINEAR)``,
which low-pass filters when it downscales; OpenCV's bilinear does not. The
official VNext weights were trained and evaluated on PIL-resized frames, so
the IDOL configs resize with mmdet's ``Resize(..., backend='pillow')`` (mmcv
``imresize`` passes it to PIL). These tests pin that the pillow backend is
PIL's resize, differs from cv2's on a downscale, gives detectron2's output
size, and is what the configs that evaluate converted weights use.
"""
import os.path as osp

import numpy as np
import pytest
from mmcv.transforms import RandomChoiceResize
from mmdet.datasets.transforms import Resize
from mmengine.config import Config
from PIL import Image

import mmookd  # noqa: F401  (registers the plugin)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VNEXT_CONFIGS = [
    'configs/idol/idol_r50_8xb4-12k_youtubevis2021.py',
    'configs/idol/idol_r50_8xb4-12k_youtubevis2019.py',
    'configs/idol/idol_r50_8xb2-12k_ovis.py',
    'configs/idol/idol_swin-l-p4-w12-384_8xb4-12k_youtubevis2021.py',
]


def sample_image(h: int = 150, w: int = 200) -> np.ndarray:
    """A BGR uint8 image with fine stripes (aliasing shows) and noise."""
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[:h, :w]
    stripes = ((xx // 2 + yy // 3) % 2) * 160
    img = np.stack([stripes, 255 - stripes, (xx * 255) // w], -1)
    return (img + rng.randint(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)


def pil_bilinear(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """detectron2's ``ResizeTransform.apply_image`` for uint8 input."""
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def d2_shortest_edge_size(h: int, w: int, short: int, max_size: int) -> tuple:
    """detectron2 ``ResizeShortestEdge.get_output_shape`` -> (h, w)."""
    scale = short / min(h, w)
    newh, neww = (short, scale * w) if h < w else (scale * h, short)
    if max(newh, neww) > max_size:
        scale = max_size / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def test_pillow_backend_is_pil_bilinear_and_not_cv2():
    img = sample_image()
    out = {}
    for backend in ('pillow', 'cv2'):
        results = Resize(
            scale=(1333, 64), keep_ratio=True, backend=backend)(
                dict(img=img.copy()))
        out[backend] = results['img']
    assert out['pillow'].shape == (64, 85, 3)
    np.testing.assert_array_equal(out['pillow'], pil_bilinear(img, 85, 64))
    # cv2 samples the 2.3x-downscaled stripes without anti-aliasing
    diff = np.abs(out['pillow'].astype(int) - out['cv2'].astype(int))
    assert diff.mean() > 5, diff.mean()


def test_random_choice_resize_passes_the_backend():
    """The train-pipeline resize takes the same option."""
    img = sample_image()
    results = RandomChoiceResize(
        scales=[(768, 96)],
        keep_ratio=True,
        resize_type='Resize',
        backend='pillow')(
            dict(img=img.copy()))
    assert results['img'].shape == (96, 128, 3)
    np.testing.assert_array_equal(results['img'], pil_bilinear(img, 128, 96))


@pytest.mark.parametrize('hw', [(720, 1280), (1080, 1920), (360, 640),
                                (1280, 720), (375, 500), (480, 3000)])
def test_output_size_is_detectron2s(hw):
    h, w = hw
    results = Resize(
        scale=(1333, 480), keep_ratio=True, backend='pillow')(
            dict(img=np.zeros((h, w, 3), np.uint8)))
    assert results['img'].shape[:2] == d2_shortest_edge_size(h, w, 480, 1333)


@pytest.mark.parametrize('path', VNEXT_CONFIGS)
def test_vnext_test_pipelines_resize_with_pillow(path):
    """Configs that evaluate converted VNext weights resize like PIL."""
    cfg = Config.fromfile(osp.join(REPO, path))
    steps = []
    for step in cfg.test_dataloader.dataset.pipeline:
        steps += step.get('transforms', [step])
    resizes = [s for s in steps if s.type == 'Resize']
    assert len(resizes) == 1 and resizes[0].get('backend') == 'pillow'
    # PIL resizes uint8 images only (mmcv asserts it)
    loads = [
        s for s in steps if s.type in ('LoadImageFromFile', 'LoadVISFrame')
    ]
    assert loads and not loads[0].get('to_float32', False)
