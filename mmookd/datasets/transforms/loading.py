# Copyright (c) mmookd contributors. All rights reserved.
"""Frame loading that names the video and frame when a frame is bad.

mmcv's ``LoadImageFromFile`` ends a corrupt frame in ``AssertionError:
failed to load image`` deep in a dataloader worker, decodes a truncated
JPEG silently (the missing part comes out grey) and never compares the
frame with the video size the masks were made for. :class:`LoadVISFrame`
decodes exactly the same way and turns each of these into a one-line
:class:`~mmookd.datasets.ytvis.VISDataError`. :func:`decode_frame` is shared
with the dataset checker (:mod:`mmookd.datasets.checker`), so both agree on
what a bad frame is.
"""
from typing import Optional, Tuple

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS

from ..ytvis import VISDataError

__all__ = ['LoadVISFrame', 'decode_frame', 'jpeg_truncated']

# trailing bytes some writers pad a file with after the end-of-image marker
_PADDING = b'\x00 \t\r\n'


def jpeg_truncated(img_bytes: bytes) -> bool:
    """A JPEG (SOI marker first) whose last marker is not end-of-image.

    libjpeg decodes such a file with a warning only and fills the rest of
    the image with grey, so decoding alone does not catch a cut download.
    """
    return img_bytes[:2] == b'\xff\xd8' and not img_bytes.rstrip(
        _PADDING).endswith(b'\xff\xd9')


def decode_frame(
    img_bytes: bytes,
    color_type: str = 'color',
    backend: str = 'cv2',
    check_truncated: bool = True
) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """Decode like mmcv's loader: ``(img, None)`` or ``(None, why)``."""
    if not img_bytes:
        return None, 'empty file'
    try:
        img = mmcv.imfrombytes(img_bytes, flag=color_type, backend=backend)
    except Exception as e:  # each backend fails its own way
        return None, f'{type(e).__name__}: {e}'.splitlines()[0]
    if img is None or img.size == 0:
        return None, 'not a readable image'
    if check_truncated and jpeg_truncated(img_bytes):
        return None, 'truncated JPEG (no end-of-image marker)'
    return img, None


@TRANSFORMS.register_module()
class LoadVISFrame(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with errors that name video and frame.

    Same arguments, same decoding and outputs (``img``, ``img_shape``,
    ``ori_shape``), plus:

    * a missing, undecodable or truncated frame raises
      ``VISDataError: <path>: cannot decode frame (video <id>, frame <k>):
      <why>`` (``ignore_empty=True`` returns None instead, as mmcv does);
    * with ``check_size`` a frame whose size differs from the video's
      ``height``/``width`` (where the data info has them) raises, because
      the video's masks would not align with it.

    Args:
        check_truncated (bool): Refuse JPEGs without an end-of-image marker.
            Defaults to True.
        check_size (bool): Compare the decoded size with ``height`` and
            ``width`` of the data info. Defaults to True.
        **kwargs: See mmcv's ``LoadImageFromFile``.
    """

    def __init__(self,
                 *args,
                 check_truncated: bool = True,
                 check_size: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.check_truncated = check_truncated
        self.check_size = check_size

    def _read(self, path: str) -> bytes:
        if self.file_client_args is not None:
            client = fileio.FileClient.infer_client(self.file_client_args,
                                                    path)
            return client.get(path)
        return fileio.get(path, backend_args=self.backend_args)

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        where = (f"video {results.get('video_id')}, "
                 f"frame {results.get('frame_id')}")
        try:
            img_bytes = self._read(path)
        except FileNotFoundError:
            img, why = None, 'file not found'
        else:
            img, why = decode_frame(img_bytes, self.color_type,
                                    self.imdecode_backend,
                                    self.check_truncated)
        if img is None:
            if self.ignore_empty:
                return None
            raise VISDataError(f'{path}: cannot decode frame ({where}): {why}')
        height, width = results.get('height'), results.get('width')
        if self.check_size and height is not None and width is not None \
                and tuple(img.shape[:2]) != (height, width):
            raise VISDataError(
                f'{path}: frame is {img.shape[1]}x{img.shape[0]} (w x h) but '
                f'the video is {width}x{height} ({where})')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, '
                f'check_truncated={self.check_truncated}, '
                f'check_size={self.check_size})')
