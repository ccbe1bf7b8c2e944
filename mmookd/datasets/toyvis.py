# Copyright (c) mmookd contributors. All rights reserved.
"""ToyVIS: a small, deterministic, synthetic video instance segmentation
dataset written in the *native* YouTube-VIS 2019/2021 format.

Why it exists: the whole project must train and evaluate end to end on a
2-core CPU without downloading YouTube-VIS, yet exercise everything that
makes VIS hard: several instances per video, same-class look-alikes, a
long-tailed class distribution, motion, scale change, occlusion by depth
order, instances entering and leaving, textured backgrounds, and (for the
``long_val`` split) YouTube-VIS-2022-style long videos whose frames are
sampled 4x more sparsely.

Layout written by :func:`generate_toyvis`::

    {out_dir}/toyvis_meta.json                      options + version
    {out_dir}/annotations/toyvis_{split}.json       native YTVIS json
    {out_dir}/{split}/JPEGImages/{video}/{step:05d}.jpg

``split`` is one of ``train``, ``val``, ``long_val``. Like the official
dataset, frame files are named after the *simulated* step they show (every
5th step: ``00000.jpg, 00005.jpg, ...``; ``long_val`` every 20th), unless
``native_frame_names=False`` (then ``00000.jpg, 00001.jpg, ...``). Only the
annotation ``file_names`` are authoritative.

The generator only needs numpy and OpenCV, so datasets can be made before
(or without) the compiled OpenMMLab stack.
"""
import colorsys
import json
import os
import os.path as osp
import shutil
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

TOYVIS_VERSION = '1.1'
TOYVIS_SPLITS = ('train', 'val', 'long_val')
TOYVIS_META_FILE = 'toyvis_meta.json'

# Class names (category ids are 1-based in this order) and the fixed prior
# the instance classes follow: one head class (~35%), two tail classes
# (~2.5% each), so class-balance issues show up as on real VIS data.
TOYVIS_CLASSES = ('circle', 'square', 'triangle', 'ellipse', 'hexagon',
                  'diamond', 'star', 'cross')
TOYVIS_CLASS_PRIOR = (0.35, 0.18, 0.14, 0.11, 0.09, 0.08, 0.025, 0.025)

# (width, height) choices; small so that a CPU can train on them.
TOYVIS_SIZES = ((128, 96), (160, 96), (160, 120), (192, 108), (192, 144))

_SPLIT_INDEX = {name: i for i, name in enumerate(TOYVIS_SPLITS)}
_PATTERNS = ('stripes', 'checker', 'dots', 'rings', 'shaded')


@dataclass(frozen=True)
class ToyVISOptions:
    """Everything that determines a ToyVIS dataset (saved in the meta file,
    so an identical request can be recognised and skipped).

    Args:
        seed (int): Master seed (>= 0). Same seed + options gives
            byte-identical json and images.
        num_train (int): Videos in ``train``. Defaults to 24.
        num_val (int): Videos in ``val``. Defaults to 8.
        num_long_val (int): Videos in ``long_val``. Defaults to 6.
        sizes (tuple): ``(width, height)`` choices, one drawn per video.
        frames (tuple): Inclusive ``(min, max)`` number of frames of
            ``train`` / ``val`` videos. Defaults to (8, 20).
        long_frames (tuple): Same for ``long_val``. Defaults to (30, 50).
        stride (int): Simulated steps between sampled frames of ``train``
            and ``val`` (YouTube-VIS: 5).
        long_stride (int): Same for ``long_val`` (YouTube-VIS 2022 long
            videos: 20).
        instances (tuple): Inclusive ``(min, max)`` instances per video.
        lookalike_prob (float): Probability that a video contains a pair of
            same-class instances with similar colour and texture.
        enter_prob (float): Probability that an instance starts outside the
            frame and enters.
        exit_prob (float): Probability that an instance leaves the frame
            before the end.
        jpeg_quality (int): JPEG quality of the frames.
        native_frame_names (bool): Name frames by simulated step like the
            official data (``00000, 00005, ...``) instead of ``0, 1, ...``.
    """
    seed: int = 0
    num_train: int = 24
    num_val: int = 8
    num_long_val: int = 6
    sizes: Tuple[Tuple[int, int], ...] = TOYVIS_SIZES
    frames: Tuple[int, int] = (8, 20)
    long_frames: Tuple[int, int] = (30, 50)
    stride: int = 5
    long_stride: int = 20
    instances: Tuple[int, int] = (2, 5)
    lookalike_prob: float = 0.4
    # Each class has a characteristic hue (like real categories have typical
    # appearance), jittered per instance with this std; <= 0 draws hues
    # uniformly so only shape tells classes apart (much harder to learn).
    class_hue_std: float = 0.05
    enter_prob: float = 0.2
    exit_prob: float = 0.2
    jpeg_quality: int = 90
    native_frame_names: bool = True

    def __post_init__(self) -> None:
        # Normalise lists (from json/argparse) to tuples so options compare
        # and serialise the same however they were given.
        object.__setattr__(self, 'sizes',
                           tuple((int(w), int(h)) for w, h in self.sizes))
        for name in ('frames', 'long_frames', 'instances'):
            lo, hi = getattr(self, name)
            object.__setattr__(self, name, (int(lo), int(hi)))
            if not 1 <= lo <= hi:
                raise ValueError(f'{name} must satisfy 1 <= min <= max, '
                                 f'got {(lo, hi)}')
        if self.seed < 0:
            raise ValueError(f'seed must be >= 0, got {self.seed}')
        for name in ('num_train', 'num_val', 'num_long_val'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0')
        if not self.sizes or any(w < 16 or h < 16 for w, h in self.sizes):
            raise ValueError(f'sizes must be (w, h) >= 16, got {self.sizes}')
        if self.stride < 1 or self.long_stride < 1:
            raise ValueError('strides must be >= 1')
        if self.enter_prob + self.exit_prob > 1:
            raise ValueError('enter_prob + exit_prob must be <= 1')
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError('jpeg_quality must be in [1, 100]')

    def to_dict(self) -> Dict[str, Any]:
        """Json-compatible dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    def num_videos(self, split: str) -> int:
        return getattr(self, f'num_{split}')


def make_toyvis_options(options: Optional[Any] = None,
                        **kwargs) -> ToyVISOptions:
    """Build options from ``None``, a dict or a :class:`ToyVISOptions`,
    with keyword overrides."""
    if options is None:
        base: Dict[str, Any] = {}
    elif isinstance(options, ToyVISOptions):
        base = asdict(options)
    else:
        base = dict(options)
    base.update(kwargs)
    known = {f.name for f in fields(ToyVISOptions)}
    unknown = set(base) - known
    if unknown:
        raise TypeError(f'unknown ToyVIS options: {sorted(unknown)}')
    return ToyVISOptions(**base)


@dataclass
class ToyVISVideo:
    """One rendered video plus the ground truth and debug information the
    json does not carry (unoccluded areas, appearance parameters), so tests
    can check occlusion and look-alikes without re-deriving geometry."""
    name: str
    video_id: int
    width: int
    height: int
    steps: List[int]
    file_names: List[str]
    category_ids: List[int]
    annotation_ids: List[int]
    # masks[i][t]: visible bool mask of instance i in frame t, None if the
    # instance is not visible (outside the frame or fully occluded).
    masks: List[List[Optional[np.ndarray]]]
    # Areas of the unoccluded shapes clipped to the frame.
    full_areas: List[List[int]]
    scales: List[List[float]]
    instances: List[Dict[str, Any]]
    lookalike_pairs: List[Tuple[int, int]]
    images: Optional[List[np.ndarray]] = None

    def to_json(self) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        """The native YouTube-VIS ``videos`` and ``annotations`` entries."""
        video = dict(
            id=self.video_id,
            width=self.width,
            height=self.height,
            length=len(self.steps),
            file_names=list(self.file_names))
        anns = []
        for ann_id, cat_id, masks in zip(self.annotation_ids,
                                         self.category_ids, self.masks):
            segs: List[Optional[Dict[str, Any]]] = []
            bboxes: List[Optional[List[float]]] = []
            areas: List[Optional[float]] = []
            for mask in masks:
                if mask is None:
                    segs.append(None)
                    bboxes.append(None)
                    areas.append(None)
                    continue
                segs.append(mask_to_rle(mask))
                bboxes.append(_tight_bbox(mask))
                areas.append(float(mask.sum()))
            anns.append(
                dict(
                    id=ann_id,
                    video_id=self.video_id,
                    category_id=cat_id,
                    segmentations=segs,
                    bboxes=bboxes,
                    areas=areas,
                    iscrowd=0,
                    width=self.width,
                    height=self.height,
                    length=len(self.steps)))
        return video, anns


def mask_to_rle(mask: np.ndarray) -> Dict[str, Any]:
    """Uncompressed RLE as in the official YouTube-VIS train json: counts
    of alternating 0/1 runs in column-major order, starting with zeros."""
    h, w = mask.shape
    flat = np.asarray(mask, dtype=np.uint8).ravel(order='F')
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {'size': [int(h), int(w)], 'counts': [int(c) for c in counts]}


def _tight_bbox(mask: np.ndarray) -> List[float]:
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    x0, y0 = int(xs[0]), int(ys[0])
    return [
        float(x0),
        float(y0),
        float(xs[-1] - x0 + 1),
        float(ys[-1] - y0 + 1)
    ]


# --------------------------------------------------------------------------
# Shapes (unit circumradius, centred at the origin)


def _regular(n: int, phase: float = -np.pi / 2) -> np.ndarray:
    ang = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(ang), np.sin(ang)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    pts = _regular(2 * points)
    pts[1::2] *= inner
    return pts


def _cross(w: float = 0.33) -> np.ndarray:
    return np.array([[w, -1], [w, -w], [1, -w], [1, w], [w, w], [w, 1],
                     [-w, 1], [-w, w], [-1, w], [-1, -w], [-w, -w], [-w, -1]],
                    dtype=np.float64)


_SHAPES = {
    'circle': _regular(40),
    'square': _regular(4, phase=np.pi / 4),
    'triangle': _regular(3),
    'ellipse': _regular(40) * np.array([1.0, 0.55]),
    'hexagon': _regular(6, phase=0.0),
    'diamond': np.array([[0, -1], [0.58, 0], [0, 1], [-0.58, 0]],
                        dtype=np.float64),
    'star': _star(),
    'cross': _cross(),
}
assert set(_SHAPES) == set(TOYVIS_CLASSES)

# --------------------------------------------------------------------------
# Planning: classes per split, instances per video


def _split_rng(opts: ToyVISOptions,
               split: str,
               stream: int,
               index: int = 0) -> np.random.Generator:
    """Independent streams per (split, purpose, video) so that a video's
    content does not depend on how many pixels other videos consumed."""
    return np.random.default_rng(
        [opts.seed, _SPLIT_INDEX[split], stream, index])


def _quota(total: int, prior: Sequence[float]) -> np.ndarray:
    """Largest-remainder class counts that follow ``prior`` exactly and keep
    every class present when there are enough instances."""
    prior = np.asarray(prior, dtype=np.float64)
    raw = total * prior / prior.sum()
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind='stable')
    counts[order[:total - counts.sum()]] += 1
    if total >= len(prior):
        for c in np.flatnonzero(counts == 0):
            counts[int(np.argmax(counts))] -= 1
            counts[c] += 1
    return counts


def _plan_classes(
    opts: ToyVISOptions, split: str, num_inst: List[int]
) -> Tuple[List[List[int]], List[Optional[Tuple[int, int]]]]:
    """Class labels (0-based) per video plus the look-alike pair of each
    video. Labels are a shuffled exact quota of the prior, so even small
    splits have the intended long tail; look-alike pairs are made by
    swapping labels between videos, which keeps the quota."""
    rng = _split_rng(opts, split, 2)
    labels = np.repeat(
        np.arange(len(TOYVIS_CLASSES)),
        _quota(sum(num_inst), TOYVIS_CLASS_PRIOR))
    rng.shuffle(labels)
    bounds = np.cumsum([0] + list(num_inst))
    per_video = [
        labels[bounds[v]:bounds[v + 1]].tolist() for v in range(len(num_inst))
    ]
    wants = [n >= 2 and rng.random() < opts.lookalike_prob for n in num_inst]
    pairs: List[Optional[Tuple[int, int]]] = [None] * len(num_inst)
    for v, want in enumerate(wants):
        if not want:
            continue
        for i in rng.permutation(num_inst[v]).tolist():
            a = per_video[v][i]
            others = [j for j in range(num_inst[v]) if j != i]
            same = [j for j in others if per_video[v][j] == a]
            if same:
                pairs[v] = (i, same[0])
                break
            donors = [(u, k) for u in range(len(num_inst))
                      if u != v and not wants[u]
                      for k, lab in enumerate(per_video[u]) if lab == a]
            if not donors:
                continue
            u, k = donors[int(rng.integers(len(donors)))]
            j = others[int(rng.integers(len(others)))]
            per_video[v][j], per_video[u][k] = a, per_video[v][j]
            pairs[v] = (i, j)
            break
    return per_video, pairs


def _hsv_to_bgr(h: float, s: float, v: float) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0),
                                  min(max(v, 0.0), 1.0))
    return np.array([b, g, r], dtype=np.float64) * 255.0


def _sinusoid(c: float, x_ref: float, v_ref: float, omega: float,
              t_ref: float) -> Tuple[float, float]:
    """Amplitude and phase of ``c + A sin(omega t + phi)`` passing through
    ``x_ref`` with velocity ``v_ref`` at ``t_ref``: smooth, bounded motion
    that is nearly linear over a short video and oscillates (leaving and
    re-entering the frame) over a long one."""
    amp = float(np.hypot(x_ref - c, v_ref / omega))
    theta = float(np.arctan2(x_ref - c, v_ref / omega))
    return amp, theta - omega * t_ref


def _plan_motion(rng: np.random.Generator, inst: Dict[str, Any], w: int,
                 h: int, steps: np.ndarray, mode: str) -> None:
    num_steps = int(steps[-1]) + 1
    speed = rng.uniform(0.12, 0.6) * w / 160.0
    radius = inst['radius']
    cx = w / 2 + rng.uniform(-0.15, 0.15) * w
    cy = h / 2 + rng.uniform(-0.15, 0.15) * h
    omega = rng.uniform(0.004, 0.01, size=2)
    if mode == 'inside':
        t_ref = float(steps[int(rng.integers(len(steps)))])
        pos = np.array(
            [rng.uniform(0.15, 0.85) * w,
             rng.uniform(0.15, 0.85) * h])
        ang = rng.uniform(0, 2 * np.pi)
        vel = speed * np.array([np.cos(ang), np.sin(ang)])
    else:
        # Outside an edge (by more than the circumradius, so invisible) at
        # the first/last step, crossing it within the video.
        t_ref = 0.0 if mode == 'enter' else float(num_steps - 1)
        r_ref = radius * _scale_at(inst, t_ref)
        d_out = r_ref + 1.5
        edge = int(rng.integers(4))
        along = rng.uniform(0.2, 0.8)
        inward = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]][edge], float)
        pos = np.array([[-d_out, along * h], [w + d_out, along * h],
                        [along * w, -d_out], [along * w, h + d_out]][edge])
        frac = rng.uniform(0.4, 0.9)
        normal = max(speed, (d_out + 0.3 * r_ref) / (frac * num_steps))
        tangent = rng.uniform(-0.4, 0.4) * speed
        vel = inward * normal + inward[::-1] * tangent
        if mode == 'exit':
            vel = -vel
    ax, px = _sinusoid(cx, pos[0], vel[0], omega[0], t_ref)
    ay, py = _sinusoid(cy, pos[1], vel[1], omega[1], t_ref)
    inst.update(
        mode=mode,
        centre=(cx, cy),
        amp=(ax, ay),
        omega=(float(omega[0]), float(omega[1])),
        phase=(px, py))


def _instance_hue(rng: np.random.Generator, label: int, std: float) -> float:
    """A class-typical hue (classes spread over the colour wheel) with
    per-instance jitter, or a uniform hue when ``std <= 0``."""
    if std <= 0:
        return float(rng.uniform(0, 1))
    base = label / len(TOYVIS_CLASSES)
    return float((base + rng.normal(0, std)) % 1.0)


def _plan_instance(rng: np.random.Generator, label: int, w: int, h: int,
                   steps: np.ndarray, opts: ToyVISOptions) -> Dict[str, Any]:
    inst: Dict[str, Any] = dict(
        label=label,
        depth=float(rng.uniform(0, 1)),
        radius=float(rng.uniform(0.09, 0.17) * min(w, h)),
        scale_amp=float(rng.uniform(0.1, 0.35)),
        scale_omega=float(rng.uniform(0.002, 0.008)),
        scale_phase=float(rng.uniform(0, 2 * np.pi)),
        angle=float(rng.uniform(0, 2 * np.pi)),
        spin=float(rng.uniform(-0.012, 0.012)),
        # Appearance: two colours mixed by a texture pattern in the
        # object's own frame, drifting slowly over simulated time.
        hue=_instance_hue(rng, label, opts.class_hue_std),
        sat=float(rng.uniform(0.35, 0.9)),
        val=float(rng.uniform(0.45, 0.95)),
        hue2=float(rng.choice([-1, 1]) * rng.uniform(0.04, 0.2)),
        sat2=float(rng.uniform(0.6, 1.1)),
        val2=float(rng.uniform(0.5, 0.8)),
        hue_drift=float(rng.choice([-1, 1]) * rng.uniform(2.5e-4, 6e-4)),
        val_amp=float(rng.uniform(0.05, 0.15)),
        val_omega=float(rng.uniform(0.002, 0.006)),
        val_phase=float(rng.uniform(0, 2 * np.pi)),
        pattern=_PATTERNS[int(rng.integers(len(_PATTERNS)))],
        freq=float(rng.uniform(0.8, 2.0)),
        freq_amp=float(rng.uniform(0.1, 0.3)),
        freq_omega=float(rng.uniform(0.002, 0.006)),
        tex_phase=float(rng.uniform(0, 2 * np.pi)),
        tex_drift=float(rng.uniform(0.01, 0.04)),
        contrast=float(rng.uniform(0.35, 0.9)),
        light=float(rng.uniform(0, 2 * np.pi)),
    )
    u = rng.random()
    if u < opts.enter_prob:
        mode = 'enter'
    elif u < opts.enter_prob + opts.exit_prob:
        mode = 'exit'
    else:
        mode = 'inside'
    _plan_motion(rng, inst, w, h, steps, mode)
    return inst


def _make_lookalike(rng: np.random.Generator, src: Dict[str, Any],
                    dst: Dict[str, Any]) -> None:
    """Give ``dst`` (same class) nearly the appearance of ``src``."""
    for key in ('hue2', 'sat2', 'val2', 'pattern', 'contrast', 'hue_drift',
                'val_amp', 'val_omega'):
        dst[key] = src[key]
    dst['hue'] = (src['hue'] + rng.uniform(-0.02, 0.02)) % 1.0
    dst['sat'] = float(np.clip(src['sat'] + rng.uniform(-0.05, 0.05), 0, 1))
    dst['val'] = float(np.clip(src['val'] + rng.uniform(-0.05, 0.05), 0, 1))
    dst['freq'] = src['freq'] * rng.uniform(0.9, 1.1)
    dst['radius'] = src['radius'] * rng.uniform(0.85, 1.15)


# --------------------------------------------------------------------------
# Rendering


def _scale_at(inst: Dict[str, Any], t: float) -> float:
    return float(
        np.exp(inst['scale_amp'] *
               np.sin(inst['scale_omega'] * t + inst['scale_phase'])))


def _pose(inst: Dict[str, Any], t: float) -> Tuple[float, float, float, float]:
    cx = inst['centre'][0] + inst['amp'][0] * np.sin(inst['omega'][0] * t +
                                                     inst['phase'][0])
    cy = inst['centre'][1] + inst['amp'][1] * np.sin(inst['omega'][1] * t +
                                                     inst['phase'][1])
    radius = inst['radius'] * _scale_at(inst, t)
    return float(cx), float(cy), radius, inst['angle'] + inst['spin'] * t


def _shape_mask(inst: Dict[str, Any], t: float, w: int, h: int) -> np.ndarray:
    cx, cy, radius, angle = _pose(inst, t)
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    pts = _SHAPES[TOYVIS_CLASSES[inst['label']]] @ rot.T * radius
    pts = pts + np.array([cx, cy])
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(
        mask, [np.round(pts * 16).astype(np.int32)],
        1,
        lineType=cv2.LINE_8,
        shift=4)
    return mask.astype(bool)


def _layout(instances: List[Dict[str, Any]], steps: np.ndarray, w: int,
            h: int) -> Tuple[List[List[np.ndarray]], List[List[int]]]:
    """Visible masks via painter's order (far to near) and the unoccluded
    in-frame areas, per instance and frame."""
    order = sorted(range(len(instances)), key=lambda i: -instances[i]['depth'])
    visible: List[List[np.ndarray]] = [[] for _ in instances]
    full: List[List[int]] = [[] for _ in instances]
    for t in steps.tolist():
        owner = np.full((h, w), -1, dtype=np.int16)
        for i in order:
            mask = _shape_mask(instances[i], t, w, h)
            full[i].append(int(mask.sum()))
            owner[mask] = i
        for i in range(len(instances)):
            visible[i].append(owner == i)
    return visible, full


def _background(rng: np.random.Generator, w: int, h: int, mx: int,
                my: int) -> np.ndarray:
    """Smooth multi-octave colour noise, a gradient and a few blurred blobs
    (distractors with object-like colours but no annotation)."""
    bw, bh = w + 2 * mx, h + 2 * my

    def noise(cells: int) -> np.ndarray:
        gw = cells
        gh = max(2, int(round(cells * bh / bw)))
        grid = rng.random((gh, gw)).astype(np.float32)
        return cv2.resize(grid, (bw, bh), interpolation=cv2.INTER_CUBIC)

    mix = np.clip(noise(int(rng.integers(3, 6))), 0, 1)[..., None]
    col_a = _hsv_to_bgr(
        rng.uniform(0, 1), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
    col_b = _hsv_to_bgr(
        rng.uniform(0, 1), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
    img = col_a * (1 - mix) + col_b * mix
    img += (noise(int(rng.integers(8, 13))) - 0.5)[..., None] * 50
    img += (noise(int(rng.integers(20, 30))) - 0.5)[..., None] * 30
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    grad = rng.uniform(-0.5, 0.5, size=2)
    img += ((xx / bw - 0.5) * grad[0] +
            (yy / bh - 0.5) * grad[1])[..., None] * 80
    blobs = np.zeros_like(img)
    alpha = np.zeros((bh, bw), dtype=np.float32)
    for _ in range(int(rng.integers(2, 5))):
        centre = (int(rng.integers(bw)), int(rng.integers(bh)))
        axes = (int(rng.integers(6, max(7, bw // 5))),
                int(rng.integers(6, max(7, bh // 5))))
        layer = np.zeros((bh, bw), dtype=np.float32)
        cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360,
                    1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), float(rng.uniform(2, 5)))
        colour = _hsv_to_bgr(
            rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.4, 0.95))
        blobs = blobs * (1 - layer[..., None]) + colour * layer[..., None]
        alpha = alpha + layer * (1 - alpha)
    img = img * (1 - alpha[..., None]) + blobs
    return np.clip(img, 0, 255).astype(np.float32)


def _paint(img: np.ndarray, inst: Dict[str, Any], mask: np.ndarray,
           t: float) -> None:
    """Fill ``mask`` with the instance's textured appearance at time ``t``;
    texture coordinates live in the object frame, so it moves, rotates and
    scales with the object."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(ys) == 0:
        return
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    cx, cy, radius, angle = _pose(inst, t)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = (xx + 0.5 - cx) / radius, (yy + 0.5 - cy) / radius
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    freq = inst['freq'] * (1 + inst['freq_amp'] *
                           np.sin(inst['freq_omega'] * t + inst['tex_phase']))
    phase = inst['tex_phase'] + inst['tex_drift'] * t
    k = 2 * np.pi * freq
    pattern = inst['pattern']
    if pattern == 'stripes':
        p = np.sin(k * u + phase)
    elif pattern == 'checker':
        p = np.tanh(3 * np.sin(k * u / 2 + phase) * np.sin(k * v / 2))
    elif pattern == 'dots':
        p = np.cos(k * u + phase) * np.cos(k * v)
    elif pattern == 'rings':
        p = np.sin(k * np.hypot(u, v) - phase)
    else:
        p = u * np.cos(phase) + v * np.sin(phase)
    hue = inst['hue'] + inst['hue_drift'] * t
    val = inst['val'] * (1 + inst['val_amp'] *
                         np.sin(inst['val_omega'] * t + inst['val_phase']))
    col1 = _hsv_to_bgr(hue, inst['sat'], val)
    col2 = _hsv_to_bgr(hue + inst['hue2'], inst['sat'] * inst['sat2'],
                       val * inst['val2'])
    a = (0.5 + 0.5 * inst['contrast'] * np.clip(p, -1, 1))[..., None]
    shade = 1 + 0.2 * (u * np.cos(inst['light']) + v * np.sin(inst['light']))
    colour = (col1 * (1 - a) + col2 * a) * shade[..., None]
    region = img[y0:y1, x0:x1]
    sub = mask[y0:y1, x0:x1]
    region[sub] = colour[sub]


def _simulate_video(opts: ToyVISOptions, split: str, index: int,
                    labels: List[int], pair: Optional[Tuple[int, int]],
                    video_id: int, ann_ids: List[int],
                    with_images: bool) -> ToyVISVideo:
    is_long = split == 'long_val'
    stride = opts.long_stride if is_long else opts.stride
    lo, hi = opts.long_frames if is_long else opts.frames
    rng = _split_rng(opts, split, 0, index)
    w, h = opts.sizes[int(rng.integers(len(opts.sizes)))]
    length = int(rng.integers(lo, hi + 1))
    steps = np.arange(length) * stride
    instances = [_plan_instance(rng, lab, w, h, steps, opts) for lab in labels]
    if pair is not None:
        _make_lookalike(rng, instances[pair[0]], instances[pair[1]])
        # Keep the pair's motion plan consistent with its new radius.
        _plan_motion(rng, instances[pair[1]], w, h, steps,
                     instances[pair[1]]['mode'])
    visible, full = _layout(instances, steps, w, h)
    # Every annotation must be visible somewhere: re-plan invisible ones
    # in front and inside the frame at one of the sampled steps.
    for _ in range(8):
        hidden = [
            i for i, vis in enumerate(visible) if not any(m.any() for m in vis)
        ]
        if not hidden:
            break
        front = min(inst['depth'] for inst in instances)
        for i in hidden:
            instances[i]['depth'] = front - 0.1
            _plan_motion(rng, instances[i], w, h, steps, 'inside')
        visible, full = _layout(instances, steps, w, h)
    masks = [[m if m.any() else None for m in vis] for vis in visible]

    name = f'{split}_{index:04d}'
    frame_ids = steps.tolist() if opts.native_frame_names else range(length)
    file_names = [f'{name}/{int(f):05d}.jpg' for f in frame_ids]
    images = None
    if with_images:
        images = _render_frames(opts, split, index, instances, steps, w, h)
    return ToyVISVideo(
        name=name,
        video_id=video_id,
        width=int(w),
        height=int(h),
        steps=steps.tolist(),
        file_names=file_names,
        category_ids=[lab + 1 for lab in labels],
        annotation_ids=list(ann_ids),
        masks=masks,
        full_areas=full,
        scales=[[_scale_at(inst, t) for t in steps.tolist()]
                for inst in instances],
        instances=instances,
        lookalike_pairs=[pair] if pair is not None else [],
        images=images)


def _render_frames(opts: ToyVISOptions, split: str, index: int,
                   instances: List[Dict[str, Any]], steps: np.ndarray, w: int,
                   h: int) -> List[np.ndarray]:
    """BGR uint8 frames; uses its own random stream so that skipping images
    (``with_images=False``) leaves the annotations unchanged."""
    rng = _split_rng(opts, split, 1, index)
    mx, my = max(2, int(0.12 * w)), max(2, int(0.12 * h))
    bg = _background(rng, w, h, mx, my)
    # Slow camera pan over the whole simulated clip.
    start = rng.integers(0, [2 * mx + 1, 2 * my + 1])
    end = rng.integers(0, [2 * mx + 1, 2 * my + 1])
    order = sorted(range(len(instances)), key=lambda i: -instances[i]['depth'])
    total = max(int(steps[-1]), 1)
    frames = []
    for t in steps.tolist():
        ox, oy = np.round(start + (end - start) * t / total).astype(int)
        img = bg[oy:oy + h, ox:ox + w].copy()
        for i in order:
            _paint(img, instances[i], _shape_mask(instances[i], t, w, h), t)
        img = cv2.GaussianBlur(img, (3, 3), 0.7)
        img += rng.normal(0, 2.0, size=img.shape).astype(np.float32)
        frames.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    return frames


# --------------------------------------------------------------------------
# Public API


def _id_blocks(opts: ToyVISOptions) -> Tuple[int, int]:
    """Id offsets per split (train 1.., val 1001.., long_val 2001.. by
    default) so ids are unique across splits and val + long_val can be
    evaluated together, YouTube-VIS-2022 style."""
    most = max(opts.num_videos(s) for s in TOYVIS_SPLITS)
    vid_block = 10**max(3, len(str(most)))
    ann_block = 10**max(5, len(str(most * opts.instances[1])))
    return vid_block, ann_block


def iter_toyvis_videos(options: Optional[Any] = None,
                       split: str = 'train',
                       with_images: bool = True,
                       **kwargs) -> Iterator[ToyVISVideo]:
    """Yield the videos of one split, exactly as :func:`generate_toyvis`
    writes them (same ids, masks and pixels before JPEG), plus debug info.

    ``with_images=False`` skips texture rendering (annotations only), which
    is much faster for statistics over large splits.
    """
    if split not in _SPLIT_INDEX:
        raise ValueError(f'split must be one of {TOYVIS_SPLITS}, got {split}')
    opts = make_toyvis_options(options, **kwargs)
    num = opts.num_videos(split)
    if num == 0:
        return
    count_rng = _split_rng(opts, split, 3)
    lo, hi = opts.instances
    num_inst = count_rng.integers(lo, hi + 1, size=num).tolist()
    labels, pairs = _plan_classes(opts, split, num_inst)
    vid_block, ann_block = _id_blocks(opts)
    split_idx = _SPLIT_INDEX[split]
    next_ann = split_idx * ann_block + 1
    for index in range(num):
        ann_ids = list(range(next_ann, next_ann + num_inst[index]))
        next_ann += num_inst[index]
        yield _simulate_video(opts, split, index, labels[index], pairs[index],
                              split_idx * vid_block + index + 1, ann_ids,
                              with_images)


def toyvis_annotation_paths(out_dir: str) -> Dict[str, str]:
    """``{split: annotation json path}`` of a dataset in ``out_dir``."""
    return {
        split: osp.join(out_dir, 'annotations', f'toyvis_{split}.json')
        for split in TOYVIS_SPLITS
    }


def _owned_paths(out_dir: str) -> List[str]:
    """Every path the generator writes (and may remove with overwrite)."""
    paths = [osp.join(out_dir, TOYVIS_META_FILE)]
    paths += list(toyvis_annotation_paths(out_dir).values())
    paths += [osp.join(out_dir, s, 'JPEGImages') for s in TOYVIS_SPLITS]
    return paths


def toyvis_status(out_dir: str,
                  options: Optional[Any] = None,
                  **kwargs) -> str:
    """``'absent'`` (nothing of ours there), ``'identical'`` (complete
    dataset with the same options and version) or ``'conflict'`` (anything
    else: different options, a partial run or foreign files in our
    paths)."""
    opts = make_toyvis_options(options, **kwargs)
    meta_path = osp.join(out_dir, TOYVIS_META_FILE)
    if osp.isfile(meta_path):
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return 'conflict'
        complete = all(osp.exists(p) for p in _owned_paths(out_dir)[1:])
        if (complete and isinstance(meta, dict)
                and meta.get('version') == TOYVIS_VERSION
                and meta.get('options') == opts.to_dict()):
            return 'identical'
        return 'conflict'
    if any(osp.lexists(p) for p in _owned_paths(out_dir)):
        return 'conflict'
    return 'absent'


def generate_toyvis(out_dir: str,
                    options: Optional[Any] = None,
                    overwrite: bool = False,
                    **kwargs) -> Dict[str, str]:
    """Write a ToyVIS dataset to ``out_dir``.

    Args:
        out_dir (str): Dataset root, e.g. ``data/toyvis``.
        options (ToyVISOptions | dict, optional): Generator options; see
            :class:`ToyVISOptions` for fields and defaults.
        overwrite (bool): Replace an existing ToyVIS dataset (only the
            paths the generator owns are removed). Without it, an identical
            dataset is reused as is and anything else raises, so nothing a
            user has is lost.
        **kwargs: Overrides of single option fields (``seed=1``, ...).

    Returns:
        dict: ``{split: annotation json path}`` for ``train``, ``val`` and
        ``long_val``.
    """
    opts = make_toyvis_options(options, **kwargs)
    paths = toyvis_annotation_paths(out_dir)
    status = toyvis_status(out_dir, opts)
    if not overwrite:
        if status == 'identical':
            return paths
        if status == 'conflict':
            raise FileExistsError(
                f'{out_dir} already holds a different or incomplete ToyVIS '
                'dataset (or foreign files in its paths); pass '
                'overwrite=True (CLI: --force) to replace it')
    for path in _owned_paths(out_dir):
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        elif osp.lexists(path):
            os.remove(path)

    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    summary: Dict[str, Dict[str, int]] = {}
    for split in TOYVIS_SPLITS:
        summary[split] = _write_split(opts, split, out_dir, paths[split])
    meta = dict(
        version=TOYVIS_VERSION,
        options=opts.to_dict(),
        annotations={
            s: osp.relpath(p, out_dir)
            for s, p in paths.items()
        },
        classes=list(TOYVIS_CLASSES),
        summary=summary)
    # Written last: its presence marks a complete dataset.
    _dump_json(meta, osp.join(out_dir, TOYVIS_META_FILE), indent=2)
    return paths


def _write_split(opts: ToyVISOptions, split: str, out_dir: str,
                 ann_path: str) -> Dict[str, int]:
    img_root = osp.join(out_dir, split, 'JPEGImages')
    os.makedirs(img_root, exist_ok=True)
    videos, annotations = [], []
    num_frames = 0
    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(opts.jpeg_quality)]
    for video in iter_toyvis_videos(opts, split, with_images=True):
        os.makedirs(osp.join(img_root, video.name), exist_ok=True)
        for file_name, img in zip(video.file_names, video.images):
            ok, buf = cv2.imencode('.jpg', img, params)
            if not ok:
                raise RuntimeError(f'JPEG encoding failed for {file_name}')
            with open(osp.join(img_root, file_name), 'wb') as f:
                f.write(buf.tobytes())
        num_frames += len(video.file_names)
        video_json, anns = video.to_json()
        videos.append(video_json)
        annotations.extend(anns)
    stride = opts.long_stride if split == 'long_val' else opts.stride
    data = dict(
        info=dict(
            description='ToyVIS: synthetic YouTube-VIS-format video '
            'instance segmentation data generated by mmookd',
            url='',
            version=TOYVIS_VERSION,
            year=2024,
            contributor='mmookd',
            date_created='',
            split=split,
            seed=opts.seed,
            frame_stride=stride),
        licenses=[],
        categories=[
            dict(id=i + 1, name=name, supercategory='shape')
            for i, name in enumerate(TOYVIS_CLASSES)
        ],
        videos=videos,
        annotations=annotations)
    _dump_json(data, ann_path)
    return dict(
        videos=len(videos), frames=num_frames, instances=len(annotations))


def _dump_json(obj: Any, path: str, indent: Optional[int] = None) -> None:
    """Atomic write, so an interrupted run never leaves a truncated json."""
    tmp = f'{path}.tmp'
    separators = (',', ': ') if indent else (',', ':')
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=indent, separators=separators)
    os.replace(tmp, path)


__all__ = [
    'TOYVIS_CLASSES', 'TOYVIS_CLASS_PRIOR', 'TOYVIS_SIZES', 'TOYVIS_SPLITS',
    'TOYVIS_VERSION', 'TOYVIS_META_FILE', 'ToyVISOptions', 'ToyVISVideo',
    'generate_toyvis', 'iter_toyvis_videos', 'make_toyvis_options',
    'mask_to_rle', 'toyvis_annotation_paths', 'toyvis_status'
]
