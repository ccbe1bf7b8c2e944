# Copyright (c) mmookd contributors. All rights reserved.
"""Streaming, frame-by-frame inference for users (issue 7).

OOKD exists to give an *online* model (paper Sec. 1: driving, surveillance),
so the user-facing API takes one frame at a time, from an mp4, a folder of
frames, a camera or any iterable of BGR arrays, and returns that frame's
tracked instances at once::

    model = init_vis_model('configs/ookd_r50.py', 'ookd_r50.pth')
    inferencer = StreamingVISInferencer(model)
    for result in inferencer.stream('street.mp4'):
        print(result.track_ids, result.class_names, result.scores)
    json_entries = inferencer.video_results(video_id=1)

Memory is bounded for any video length: frames are read lazily and dropped
after use, the tracker keeps a fixed number of embeddings per live track, and
masks are kept only as RLE at the original size (in
:class:`~mmookd.models.trackers.VideoTrackAssembler`), never as dense per-video
buffers -- the failure behind "inference runs out of memory on long videos", a
frequent issue in other VIS codebases.

The per-frame preprocessing is the config's own test pipeline (the
transforms inside its ``TransformBroadcaster``, with ``LoadImageFromFile``
replaced by ``LoadImageFromNDArray``) followed by the model's data
preprocessor, so streamed results equal ``tools/test.py``'s on the same
frames.
"""
import copy
import ctypes
import logging
import os
import os.path as osp
import re
import warnings
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import cv2
import mmcv
import numpy as np
import pycocotools.mask as mask_util
import torch
from mmcv.transforms import Compose
from mmdet.registry import MODELS, TRANSFORMS
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn

__all__ = [
    'FrameResult', 'FrameSource', 'StreamingVISInferencer',
    'frame_test_pipeline', 'init_vis_model', 'open_frame_source'
]

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
PRECISIONS = {
    'fp32': None,
    'fp16': torch.float16,
    'bf16': torch.bfloat16,
}

# Transforms that load annotations, pack or sample frames: meaningless for
# one unannotated frame.
_DROPPED_TRANSFORMS = ('LoadTrackAnnotations', 'LoadAnnotations',
                       'LoadPanopticAnnotations', 'PackTrackInputs',
                       'PackDetInputs', 'PackVideoInputs')
_LOADERS = ('LoadImageFromFile', 'LoadVISFrame', 'LoadImageFromNDArray')


def _type_name(transform: dict) -> str:
    """``'mmdet.Resize'`` -> ``'Resize'``."""
    name = transform.get('type', '')
    return name.split('.')[-1] if isinstance(name, str) else name.__name__


# ----------------------------------------------------------------------
# model
# ----------------------------------------------------------------------
def init_vis_model(config: Union[str, Path, Config],
                   checkpoint: Optional[str] = None,
                   device: Union[str, torch.device] = 'cpu',
                   cfg_options: Optional[dict] = None) -> nn.Module:
    """Build an online VIS model (IDOL, OOKD student) for inference.

    Like mmdet's ``init_detector`` but for the video models of this
    package, and never downloading anything: the checkpoint must be a local
    file. The config and ``dataset_meta`` (class names, category ids) from
    the checkpoint are attached to the model as ``model.cfg`` and
    ``model.dataset_meta``.

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Local checkpoint file. ``None`` gives
            random weights (with a warning): useful for speed and memory
            benchmarks, meaningless predictions.
        device (str | torch.device): Where the model runs. Defaults to
            ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode on ``device``.
    """
    if isinstance(config, (str, Path)):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError('config must be a file name or a Config, got '
                        f'{type(config).__name__}')
    config = copy.deepcopy(config)
    if cfg_options:
        config.merge_from_dict(cfg_options)
    # importing mmookd.apis imported mmookd, which registered everything
    init_default_scope(config.get('default_scope', 'mmdet'))
    if checkpoint is not None:
        checkpoint = str(checkpoint)
        if '://' in checkpoint:
            raise FileNotFoundError(
                f'checkpoint {checkpoint} is a URL; only local files are '
                'supported (nothing is downloaded): download it first')
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        # the checkpoint has every weight: skip pre-trained initialisation
        backbone = config.model.get('detector', {}).get('backbone', {})
        if isinstance(backbone, dict) and 'init_cfg' in backbone:
            backbone['init_cfg'] = None
    model = MODELS.build(config.model)
    model = revert_sync_batchnorm(model)
    for name in ('init_stream_state', 'predict_frame'):
        if not callable(getattr(model, name, None)):
            raise TypeError(
                f'{type(model).__name__} is not an online model: it has no '
                f'`{name}`; streaming inference needs IDOL or OOKD')
    dataset_meta = {}
    if checkpoint is None:
        warnings.warn(
            'init_vis_model: no checkpoint given, the model has RANDOM '
            'weights (fine for speed / memory benchmarks, its predictions '
            'mean nothing)')
        # DETR's level embeddings are uninitialised memory until this runs
        _quiet_init_weights(model)
    else:
        ckpt = load_checkpoint(
            model, checkpoint, map_location='cpu', logger='current')
        dataset_meta = dict(ckpt.get('meta', {}).get('dataset_meta') or {})
        del ckpt
    if 'classes' not in dataset_meta:
        dataset_meta.update(_classes_from_config(config))
    model.dataset_meta = dataset_meta
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def _quiet_init_weights(model: nn.Module) -> None:
    """``init_weights`` without mmengine's per-parameter INFO log (hundreds
    of lines that would bury a demo's output)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def _classes_from_config(cfg: Config) -> dict:
    """Class names from the test dataset config (``metainfo`` or a
    ``dataset_version`` preset), when the checkpoint has none."""
    try:
        from mmookd.datasets.ytvis import VIS_METAINFOS
    except ImportError:  # pragma: no cover
        return {}
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
    for ds in _iter_datasets(loader.get('dataset', {})):
        classes = (ds.get('metainfo') or {}).get('classes')
        if classes:
            return dict(classes=tuple(classes))
        version = ds.get('dataset_version')
        if version is not None and str(version).lower() in VIS_METAINFOS:
            return dict(VIS_METAINFOS[str(version).lower()])
    return {}


def _iter_datasets(ds: Any) -> Iterator[dict]:
    """Dataset configs inside wrappers (``ConcatDataset``, ...)."""
    if not isinstance(ds, dict):
        return
    yield ds
    for child in ds.get('datasets', []) or []:
        yield from _iter_datasets(child)
    if isinstance(ds.get('dataset'), dict):
        yield from _iter_datasets(ds['dataset'])


def frame_test_pipeline(cfg: Config) -> List[dict]:
    """The config's test pipeline for one in-memory BGR frame.

    VIS test pipelines broadcast per-frame transforms over a video
    (``TransformBroadcaster``) and pack whole videos; here the per-frame
    transforms are taken out of the broadcaster, the file loader becomes
    ``LoadImageFromNDArray`` (keeping ``to_float32``), and annotation
    loading and packing are dropped.

    Args:
        cfg (Config): A full config with ``test_pipeline`` or
            ``test_dataloader.dataset.pipeline``.

    Returns:
        list[dict]: Transform configs, starting with the loader.
    """
    pipeline = cfg.get('test_pipeline')
    if not pipeline:
        loader = cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}
        for ds in _iter_datasets(loader.get('dataset', {})):
            if ds.get('pipeline'):
                pipeline = ds['pipeline']
                break
    if not pipeline:
        raise KeyError('the config has no test pipeline (test_pipeline or '
                       'test_dataloader.dataset.pipeline)')
    flat: List[dict] = []
    for transform in pipeline:
        if _type_name(transform) == 'TransformBroadcaster':
            flat.extend(transform['transforms'])
        else:
            flat.append(transform)
    loader = dict(type='LoadImageFromNDArray')
    frame_pipeline: List[dict] = []
    for transform in flat:
        name = _type_name(transform)
        if name in _LOADERS:
            if transform.get('to_float32'):
                loader['to_float32'] = True
        elif name in _DROPPED_TRANSFORMS or name.endswith('FrameSample'):
            continue
        else:
            frame_pipeline.append(copy.deepcopy(dict(transform)))
    return [loader] + frame_pipeline


# ----------------------------------------------------------------------
# results
# ----------------------------------------------------------------------
@dataclass
class FrameResult:
    """Online output of one frame.

    Attributes:
        frame_id (int): Index of the frame in the stream.
        track_ids (np.ndarray): ``(n,)`` int64 track ids (stable over time).
        labels (np.ndarray): ``(n,)`` int64 0-based class labels (this
            frame's most likely class; the video-level class is decided by
            :meth:`StreamingVISInferencer.video_results`).
        class_names (list[str]): Names of ``labels``.
        scores (np.ndarray): ``(n,)`` float32 class scores.
        bboxes (np.ndarray): ``(n, 4)`` float32 xyxy boxes at the original
            frame size.
        masks (list[dict]): ``n`` pycocotools RLEs at the original size.
        ori_shape (tuple[int, int]): ``(height, width)`` of the frame.
        binary_masks (np.ndarray, optional): ``(n, H, W)`` uint8 masks,
            only when decoding was asked for.
    """
    frame_id: int
    track_ids: np.ndarray
    labels: np.ndarray
    class_names: List[str]
    scores: np.ndarray
    bboxes: np.ndarray
    masks: List[dict]
    ori_shape: Tuple[int, int]
    binary_masks: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.track_ids)

    def decode_masks(self) -> np.ndarray:
        """``(n, H, W)`` uint8 binary masks decoded from the RLEs."""
        if self.binary_masks is None:
            h, w = self.ori_shape
            if self.masks:
                decoded = mask_util.decode(list(self.masks))
                self.binary_masks = np.ascontiguousarray(
                    decoded.transpose(2, 0, 1))
            else:
                self.binary_masks = np.zeros((0, h, w), np.uint8)
        return self.binary_masks


# ----------------------------------------------------------------------
# frame sources
# ----------------------------------------------------------------------
def _natural_key(name: str) -> list:
    """'f2.png' < 'f10.png' (numbered frames are rarely zero-padded)."""
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


class FrameSource:
    """Lazily read BGR uint8 frames from a video file, a folder of images, a
    camera or an iterable of arrays; see :func:`open_frame_source`.

    Attributes:
        name (str): What is read (path, ``camera 0``, ``<frames>``).
        fps (float, optional): Frame rate declared by the video or camera.
        num_frames (int, optional): Declared / known number of frames.
    """

    def __init__(self,
                 name: str,
                 frames: Callable[[], Iterator[np.ndarray]],
                 fps: Optional[float] = None,
                 num_frames: Optional[int] = None) -> None:
        self.name = name
        self._frames = frames
        self.fps = fps
        self.num_frames = num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames()

    def __len__(self) -> int:
        if self.num_frames is None:
            raise TypeError(f'{self.name} has no known length')
        return self.num_frames


def open_frame_source(
    source: Union[str, Path, int, Iterable[np.ndarray], FrameSource]
) -> FrameSource:
    """Open a frame source, failing early with a message naming it.

    Args:
        source: A video file (anything OpenCV / FFmpeg decodes: mp4, avi,
            ...), a folder of images (``.jpg``, ``.png``, ... sorted by
            name, numbers compared as numbers), a camera index (``int``, or
            a string of digits that is not an existing path), or an
            iterable of BGR ``uint8`` arrays.

    Returns:
        FrameSource: Iterating it reads the frames one by one.
    """
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, Path):
        source = str(source)
    if isinstance(source, str) and source.isdigit() and \
            not osp.exists(source):
        source = int(source)
    if isinstance(source, int):
        return _camera_source(source)
    if isinstance(source, str):
        if osp.isdir(source):
            return _folder_source(source)
        if not osp.isfile(source):
            raise FileNotFoundError(f'no video file or frame folder at '
                                    f'{source}')
        return _video_source(source)
    if isinstance(source, np.ndarray):
        raise TypeError('pass an iterable of frames, not a single array '
                        '(use StreamingVISInferencer.__call__ for one frame)')
    if not isinstance(source, Iterable):
        raise TypeError('source must be a video path, a frame folder, a '
                        f'camera index or frames, got {type(source)}')
    num = len(source) if hasattr(source, '__len__') else None
    return FrameSource('<frames>', lambda: iter(source), None, num)


def _folder_source(folder: str) -> FrameSource:
    names = sorted(
        (n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
         and osp.isfile(osp.join(folder, n))),
        key=_natural_key)
    if not names:
        raise ValueError(f'frame folder {folder} has no images (looked for '
                         f'{", ".join(IMAGE_EXTENSIONS)})')

    def frames() -> Iterator[np.ndarray]:
        for idx, name in enumerate(names):
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                data = f.read()
            # the dataset's LoadImageFromFile decodes the same way
            img = mmcv.imfrombytes(data, flag='color', backend='cv2')
            if img is None:
                raise ValueError(
                    f'frame {idx} ({path}) is not a readable image')
            yield img

    return FrameSource(folder, frames, None, len(names))


def _open_capture(target: Union[str, int], what: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        cap.release()
        raise ValueError(f'cannot open {what}: OpenCV (FFmpeg) could not '
                         'read it as a video')
    return cap


def _capture_frames(cap: cv2.VideoCapture,
                    what: str,
                    declared: Optional[int],
                    name: Optional[str] = None) -> Iterator[np.ndarray]:
    """Frames of an open capture; the capture is released when the
    generator ends or is closed.

    A damaged video is read as far as it decodes: the first frame OpenCV
    cannot return (end of a truncated file, a frame that fails to decode)
    ends the stream, the frames before it are kept, and a warning says
    where reading stopped (``name``: the file it names).
    """
    count = 0
    try:
        while True:
            try:
                ok, frame = cap.read()
            except cv2.error:  # some backends raise on a corrupt packet
                ok, frame = False, None
            if not ok or frame is None:
                break
            count += 1
            yield frame
    finally:
        cap.release()
    if count == 0:
        raise ValueError(f'could not decode any frame from {what}: the file '
                         'is damaged or not a video')
    # container frame counts can be estimates (duration x fps, off by one
    # when rounded): a shortfall of more than that means a damaged file
    if declared and declared - count > max(1, 0.01 * declared):
        warnings.warn(f'{name or what}: reading stopped at frame {count} of '
                      f'{declared} (damaged video?)')


def _video_source(path: str) -> FrameSource:
    what = f'video {path}'
    cap = _open_capture(path, what)
    fps = cap.get(cv2.CAP_PROP_FPS)
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    cap.release()
    if not ok or first is None:
        raise ValueError(f'could not decode any frame from {what}: the file '
                         'is damaged or not a video')
    fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
    declared = declared if declared > 0 else None

    def frames() -> Iterator[np.ndarray]:
        return _capture_frames(
            _open_capture(path, what), what, declared, name=path)

    return FrameSource(path, frames, fps, declared)


def _camera_source(index: int) -> FrameSource:
    what = f'camera {index}'

    def frames() -> Iterator[np.ndarray]:
        return _capture_frames(_open_capture(index, what), what, None)

    cap = _open_capture(index, what)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
    return FrameSource(what, frames, fps, None)


# ----------------------------------------------------------------------
# inferencer
# ----------------------------------------------------------------------
class _FrameCounter:
    """Stands in for the video assembler when no video-level results are
    wanted: counts frames (the model's frame index), keeps nothing."""

    def __init__(self) -> None:
        self.num_frames = 0
        self.track_ids: List[int] = []

    def add_frame(self, frame_id: int, *args: Any) -> None:
        self.num_frames += 1


_MALLOC_TRIM: Any = None


def release_free_heap() -> bool:
    """Return the C heap's free pages to the OS (glibc ``malloc_trim``).

    Returns:
        bool: False where there is no glibc (then nothing is done).
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL('libc.so.6').malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM is False:
        return False
    _MALLOC_TRIM(0)
    return True


class StreamingVISInferencer:
    """Online video instance segmentation, one frame at a time.

    Keeps one stream (video) state: call :meth:`reset` (or
    :meth:`stream`, which resets) before a new video. Per frame it runs the
    config's test transforms, the model's data preprocessor and
    ``model.predict_frame``: the tracker assigns ids at once, so results
    can be shown live.

    Args:
        model (nn.Module | str | Path | Config): A model from
            :func:`init_vis_model`, or a config to build one.
        checkpoint (str, optional): Local checkpoint, when ``model`` is a
            config. ``None``: random weights (warning).
        device (str, optional): Device, when ``model`` is a config
            (default ``'cpu'``).
        pipeline (list[dict], optional): Per-frame transforms replacing the
            config's test pipeline (must start with a loader of
            in-memory images such as ``LoadImageFromNDArray``); e.g. a
            benchmark at a fixed input size drops the resize.
        precision (str): ``'fp32'``, ``'fp16'`` or ``'bf16'``: the network
            runs under ``torch.autocast`` with that dtype. Defaults to
            ``'fp32'``.
        classes (Sequence[str], optional): Class names; defaults to
            ``model.dataset_meta['classes']``, else ``class{i}``.
        cfg_options (dict, optional): Config overrides, when ``model`` is a
            config.
        keep_video_results (bool): Keep every track's RLEs for
            :meth:`video_results`. The only per-video state that grows
            with the video (by the RLEs of the output tracks); turn it off
            for endless live streams that need per-frame results only.
            Defaults to True.
        trim_memory_every (int): Every this many frames, hand the C heap's
            free pages back to the OS (glibc ``malloc_trim``). Long-lived
            small objects (the kept RLEs) pin pages between the large
            per-frame temporaries, so without it the resident memory of a
            stream grows several times faster than the data it keeps
            (measured on a 2,000-frame stream keeping ~5 tracks: peak RSS
            +8.5% without, +3% or less with it). Costs about 3 ms per call;
            0 disables. Defaults to 100.
    """

    def __init__(self,
                 model: Union[nn.Module, str, Path, Config],
                 checkpoint: Optional[str] = None,
                 device: Optional[Union[str, torch.device]] = None,
                 pipeline: Optional[Sequence[dict]] = None,
                 precision: str = 'fp32',
                 classes: Optional[Sequence[str]] = None,
                 cfg_options: Optional[dict] = None,
                 keep_video_results: bool = True,
                 trim_memory_every: int = 100) -> None:
        if not isinstance(model, nn.Module):
            model = init_vis_model(
                model,
                checkpoint,
                device=device or 'cpu',
                cfg_options=cfg_options)
        elif device is not None:
            model.to(device)
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {list(PRECISIONS)}, '
                             f'got {precision!r}')
        self.model = model.eval()
        self.precision = precision
        self.device = next(model.parameters()).device
        cfg = getattr(model, 'cfg', None)
        if pipeline is None:
            if cfg is None:
                raise ValueError('the model has no `cfg` (build it with '
                                 'init_vis_model) and no pipeline was given')
            pipeline = frame_test_pipeline(cfg)
        init_default_scope('mmdet')
        self.pipeline = Compose([
            TRANSFORMS.build(t) if isinstance(t, (dict, ConfigDict)) else t
            for t in pipeline
        ])
        self.pack = TRANSFORMS.build(dict(type='PackTrackInputs'))
        meta = getattr(model, 'dataset_meta', None) or {}
        if classes is None:
            classes = meta.get('classes')
        num_classes = getattr(
            getattr(model, 'head', None), 'num_classes', None)
        if classes is None:
            classes = [f'class{i}' for i in range(num_classes or 0)]
        self.classes = tuple(classes)
        self.cat_ids = meta.get('cat_ids')
        self.keep_video_results = keep_video_results
        self.trim_memory_every = max(int(trim_memory_every), 0)
        self.reset()

    # -- state ---------------------------------------------------------
    def reset(self) -> None:
        """Start a new video: fresh tracker, no results, any frame size."""
        old = getattr(self, 'state', None)
        if old is not None and hasattr(old, 'close'):
            old.close()  # the fast path's worker of the previous video
        self.state = self.model.init_stream_state()
        if not self.keep_video_results:
            self.state.assembler = _FrameCounter()
        self.frame_shape: Optional[Tuple[int, ...]] = None

    @property
    def num_frames(self) -> int:
        """Frames processed since the last :meth:`reset`."""
        return self.state.frame_id

    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # -- per frame -----------------------------------------------------
    def _check_frame(self, frame: Any, frame_id: int) -> np.ndarray:
        if not isinstance(frame, np.ndarray):
            raise TypeError(f'frame {frame_id}: expected a numpy BGR image, '
                            f'got {type(frame).__name__}')
        if frame.dtype != np.uint8:
            raise TypeError(f'frame {frame_id}: expected dtype uint8, got '
                            f'{frame.dtype}')
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        elif frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f'frame {frame_id}: expected an (H, W, 3) BGR '
                             f'image, got shape {frame.shape}')
        if self.frame_shape is None:
            self.frame_shape = frame.shape
        elif frame.shape != self.frame_shape:
            h0, w0 = self.frame_shape[:2]
            h, w = frame.shape[:2]
            raise ValueError(
                f'frame {frame_id} is {w}x{h} but the stream started with '
                f'{w0}x{h0} frames: all frames of a video must have one '
                'size (call reset() to start a new video)')
        return frame

    def preprocess(self, frame: np.ndarray) -> Tuple[torch.Tensor, Any]:
        """BGR frame -> (1, C, H, W) network input and its data sample,
        exactly as the test dataloader + data preprocessor make them."""
        frame_id = self.state.frame_id
        results = dict(
            img=frame, img_id=frame_id, frame_id=frame_id, video_id=0)
        results = self.pipeline(results)
        packed = self.pack({k: [v] for k, v in results.items()})
        data = self.model.data_preprocessor(
            dict(
                inputs=[packed['inputs']],
                data_samples=[packed['data_samples']]),
            training=False)
        return data['inputs'][:, 0], data['data_samples'][0][0]

    @torch.no_grad()
    def __call__(self,
                 frame: np.ndarray,
                 decode_masks: bool = False) -> FrameResult:
        """Process the next frame of the current video.

        Args:
            frame (np.ndarray): ``(H, W, 3)`` BGR uint8 (grayscale and BGRA
                are converted).
            decode_masks (bool): Also fill ``binary_masks``. Defaults to
                False (RLE only: cheaper, and what results files need).

        Returns:
            FrameResult: The frame's tracked instances.
        """
        return self._finish(self._submit(frame), decode_masks)

    def _submit(self, frame: np.ndarray) -> Any:
        """Run the frame up to the tracker's decisions: the fast path
        (``model.fast``) returns a future of the host output, whose masks a
        background worker encodes; the reference path its result."""
        frame_id = self.state.frame_id
        frame = self._check_frame(frame, frame_id)
        inputs, sample = self.preprocess(frame)
        with torch.no_grad(), self._autocast():
            if getattr(self.model, 'fast', False):
                pred = self.model.predict_frame_async(inputs, sample,
                                                      self.state)
            else:
                pred = self.model.predict_frame(inputs, sample, self.state)
        return frame_id, tuple(int(s) for s in frame.shape[:2]), pred

    def _finish(self, submitted: Any, decode_masks: bool) -> FrameResult:
        """The :class:`FrameResult` of a :meth:`_submit` (waits for the
        worker on the fast path: no tensor is read here then)."""
        frame_id, ori_shape, pred = submitted
        if hasattr(pred, 'result'):  # fast path: host arrays already
            host = pred.result()
            result = FrameResult(
                frame_id=frame_id,
                track_ids=host.instances_id,
                labels=host.labels,
                class_names=[self._class_name(lb) for lb in host.labels],
                scores=host.scores,
                bboxes=host.bboxes.reshape(-1, 4),
                masks=list(host.masks),
                ori_shape=ori_shape)
            return self._after_frame(result, decode_masks)
        labels = pred.labels.cpu().numpy().astype(np.int64)
        result = FrameResult(
            frame_id=frame_id,
            track_ids=pred.instances_id.cpu().numpy().astype(np.int64),
            labels=labels,
            class_names=[self._class_name(lb) for lb in labels],
            scores=pred.scores.float().cpu().numpy(),
            bboxes=pred.bboxes.float().cpu().numpy().reshape(-1, 4),
            masks=list(pred.masks),
            ori_shape=ori_shape)
        return self._after_frame(result, decode_masks)

    def _after_frame(self, result: FrameResult,
                     decode_masks: bool) -> FrameResult:
        if decode_masks:
            result.decode_masks()
        if self.trim_memory_every and \
                (result.frame_id + 1) % self.trim_memory_every == 0:
            release_free_heap()
        return result

    def _class_name(self, label: int) -> str:
        label = int(label)
        if 0 <= label < len(self.classes):
            return str(self.classes[label])
        return f'class{label}'

    def stream(self,
               source: Union[str, Path, int, Iterable[np.ndarray],
                             FrameSource],
               max_frames: Optional[int] = None,
               decode_masks: bool = False) -> Iterator[FrameResult]:
        """Reset, then yield the result of every frame of ``source``.

        Frames are read lazily: nothing but the tracker state and the
        per-track RLEs outlives a frame, so any length fits in memory. On
        the fast path the next frames' networks run while a worker encodes
        the earlier ones' masks: results come out in order, at most
        ``test_cfg.max_pending`` frames behind the frame read.

        Args:
            source: See :func:`open_frame_source`.
            max_frames (int, optional): Stop after this many frames.
            decode_masks (bool): See :meth:`__call__`.
        """
        frames = open_frame_source(source)
        self.reset()
        iterator = iter(frames)
        lag = 0
        if getattr(self.model, 'fast', False):
            lag = int(self.model.test_cfg.get('max_pending', 0))
        pending: deque = deque()
        try:
            for frame in iterator:
                if max_frames is not None and self.num_frames >= max_frames:
                    break
                pending.append(self._submit(frame))
                while len(pending) > lag:
                    yield self._finish(pending.popleft(), decode_masks)
            while pending:
                yield self._finish(pending.popleft(), decode_masks)
        finally:
            close = getattr(iterator, 'close', None)
            if close is not None:
                close()

    # -- video level ---------------------------------------------------
    def video_results(self,
                      video_id: int = 0,
                      num_frames: Optional[int] = None,
                      absent_as_empty: bool = False) -> List[dict]:
        """YouTube-VIS result-JSON entries of the video so far.

        Assembled from the RLEs kept per track (IDOL's noise filter, mean
        class score, one entry per class above the threshold), with the
        checkpoint's category ids when it has them.

        Args:
            video_id (int): The ``video_id`` to write.
            num_frames (int, optional): Video length; defaults to the frames
                processed.
            absent_as_empty (bool): All-zero RLEs instead of ``None`` where
                a track is absent.

        Returns:
            list[dict]: ``{video_id, score, category_id, segmentations}``.
        """
        self._check_video_results()
        return self.state.assembler.to_ytvis_results(
            video_id,
            num_frames=num_frames,
            cat_ids=self.cat_ids,
            absent_as_empty=absent_as_empty)

    def track_instances(self) -> list:
        """Per-frame video-level ``pred_track_instances`` (what
        ``model.predict`` returns for a whole video)."""
        self._check_video_results()
        return self.state.assembler.to_track_instances()

    def _check_video_results(self) -> None:
        if not self.keep_video_results:
            raise RuntimeError('video-level results are not kept: the '
                               'inferencer was made with '
                               'keep_video_results=False')
