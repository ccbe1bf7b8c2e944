# Copyright (c) mmookd contributors. All rights reserved.
"""Frame samplers for the online student (IDOL key/reference pairs), the
offline teacher (VITA-style clips) and OOKD's distillation (a pair for the
student inside a clip for the teacher).

Both subclass mmdet's :class:`BaseFrameSample` and emit what
``TransformBroadcaster`` + ``PackTrackInputs`` expect: every key is a
per-frame list of the same length (the broadcaster scatters *all* keys),
``key_frame_flags`` says which frames are key frames, ``video_length`` is the
number of sampled frames and ``ori_video_length`` the video's length.
Randomness comes from Python's ``random`` like mmdet's samplers, so
``mmengine``'s seeding (incl. per-worker seeds) applies.
"""
import copy
import random
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmdet.datasets.transforms import BaseFrameSample
from mmdet.registry import TRANSFORMS

__all__ = ['KeyRefFrameSample', 'ClipFrameSample', 'KeyRefClipSample']


def _parse_frame_range(frame_range: Union[int, Sequence[int]]) -> List[int]:
    """``R`` -> ``[-R, R]``; ``[l, r]`` with ``l <= 0 <= r`` kept."""
    if isinstance(frame_range, bool):
        raise TypeError('frame_range must be an int or [left, right]')
    if isinstance(frame_range, int):
        if frame_range < 1:
            raise ValueError(
                f'frame_range must be >= 1 to draw another frame, got '
                f'{frame_range}')
        return [-frame_range, frame_range]
    if isinstance(frame_range, (list, tuple)) and len(frame_range) == 2 \
            and all(isinstance(v, int) and not isinstance(v, bool)
                    for v in frame_range):
        left, right = frame_range
        if left > 0 or right < 0 or (left == 0 and right == 0):
            raise ValueError(
                f'frame_range [left, right] needs left <= 0 <= right and a '
                f'non-empty window, got {list(frame_range)}')
        return [left, right]
    raise TypeError(
        f'frame_range must be an int or [left, right], got {frame_range!r}')


def _anchor(video_infos: dict) -> int:
    """Sampler-given ``key_frame_id`` (TrackImgSampler) or a random frame."""
    length = video_infos['video_length']
    if length < 1:
        raise ValueError(
            f"video {video_infos.get('video_id')} has no frames to sample "
            '(was every frame filtered out?)')
    if 'key_frame_id' in video_infos:
        key_frame_id = video_infos['key_frame_id']
        if not isinstance(key_frame_id, int) or not 0 <= key_frame_id < length:
            raise ValueError(
                f'key_frame_id {key_frame_id!r} is not a frame index of '
                f"video {video_infos.get('video_id')} (length {length})")
        return key_frame_id
    return random.randrange(length)


def _window(anchor: int, length: int, frame_range: List[int]) -> List[int]:
    """Frames ``[t+l, t+r]`` clipped to the video, without ``t``.

    With an asymmetric range at the video border the window can be empty;
    then the nearest neighbour of ``t`` is used so a pair is still drawn.
    """
    left = max(0, anchor + frame_range[0])
    right = min(length - 1, anchor + frame_range[1])
    window = [i for i in range(left, right + 1) if i != anchor]
    if not window and length > 1:
        window = [anchor - 1 if anchor > 0 else anchor + 1]
    return window


class _FrameSampleMixin:
    """Collate frames without sharing objects between repeated indices."""

    def prepare_data(self, video_infos: dict,
                     sampled_inds: List[int]) -> Dict[str, List]:
        """Like mmdet's, but a frame drawn twice (1-frame videos, sampling
        with replacement) is deep-copied so in-place edits of one copy by
        later transforms cannot leak into the other."""
        frames = video_infos['images']
        final_data_info = defaultdict(list)
        seen = set()
        for index in sampled_inds:
            data = frames[index]
            data = copy.deepcopy(data) if index in seen else dict(data)
            seen.add(index)
            for key in self.collect_video_keys:
                if key == 'video_length':
                    data['ori_video_length'] = video_infos[key]
                    data['video_length'] = len(sampled_inds)
                else:
                    data[key] = video_infos[key]
            for key, value in data.items():
                final_data_info[key].append(value)
        return final_data_info


@TRANSFORMS.register_module()
class KeyRefFrameSample(_FrameSampleMixin, BaseFrameSample):
    """Sample a (key, reference) pair as IDOL does.

    An anchor ``t`` is the sampler's ``key_frame_id`` (``TrackImgSampler``)
    or a random frame; the other frame is uniform over
    ``[t-R, t-1] ∪ [t+1, t+R]`` clipped to the video. The pair is sorted and
    the *earlier* frame is the key frame (``key_frame_flags=[True, False]``),
    so the student always tracks forward in time. A 1-frame video yields the
    same frame twice.

    Args:
        frame_range (int | list[int]): ``R`` or ``[left, right]`` offsets
            (``left <= 0 <= right``). Defaults to 10.
        collect_video_keys (list[str]): Video-level keys copied to every
            frame. Defaults to ``['video_id', 'video_length']``.
    """

    def __init__(self,
                 frame_range: Union[int, List[int]] = 10,
                 collect_video_keys: List[str] = ['video_id', 'video_length']):
        super().__init__(collect_video_keys=list(collect_video_keys))
        self.frame_range = _parse_frame_range(frame_range)

    def sampling_frames(self, video_length: int,
                        key_frame_id: int) -> Tuple[List[int], List[bool]]:
        """Return the sorted pair and its key-frame flags."""
        if video_length == 1:
            return [key_frame_id, key_frame_id], [True, False]
        other = random.choice(
            _window(key_frame_id, video_length, self.frame_range))
        return sorted([key_frame_id, other]), [True, False]

    def transform(self, video_infos: dict) -> Optional[Dict[str, List]]:
        """Sample the pair and collate it frame-wise."""
        inds, flags = self.sampling_frames(video_infos['video_length'],
                                           _anchor(video_infos))
        results = self.prepare_data(video_infos, inds)
        results['key_frame_flags'] = flags
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(frame_range={self.frame_range}, '
                f'collect_video_keys={self.collect_video_keys})')


@TRANSFORMS.register_module()
class ClipFrameSample(_FrameSampleMixin, BaseFrameSample):
    """Sample a T-frame clip around an anchor as VITA does (offline teacher).

    The anchor ``t`` is the sampler's ``key_frame_id`` or a random frame; the
    other ``T-1`` frames are drawn from ``[t-R, t+R] \\ {t}`` clipped to the
    video (with replacement by default, like VITA's ``np.random.choice``),
    and the clip is sorted in time. Without replacement, a window smaller
    than ``T-1`` is used entirely and the rest drawn with replacement.

    ``PackTrackInputs`` turns ``key_frame_flags`` into ``key_frames_inds`` /
    ``ref_frames_inds``: only the anchor (its first occurrence) is flagged,
    so ``key_frames_inds=[anchor position]`` and the other T-1 frames are
    references, matching mmdet's ``UniformRefFrameSample`` convention.
    Clip-level models use all T frames in order and ignore the flags.

    Args:
        num_frames (int): Clip length T. Defaults to 4.
        frame_range (int | list[int]): ``R`` or ``[left, right]``.
            Defaults to 10.
        with_replacement (bool): Draw the T-1 frames with replacement.
            Defaults to True.
        collect_video_keys (list[str]): Video-level keys copied to every
            frame.
    """

    def __init__(self,
                 num_frames: int = 4,
                 frame_range: Union[int, List[int]] = 10,
                 with_replacement: bool = True,
                 collect_video_keys: List[str] = ['video_id', 'video_length']):
        super().__init__(collect_video_keys=list(collect_video_keys))
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f'num_frames must be an int >= 1, got '
                             f'{num_frames!r}')
        self.num_frames = num_frames
        self.frame_range = _parse_frame_range(frame_range)
        self.with_replacement = with_replacement

    def sampling_frames(self, video_length: int,
                        key_frame_id: int) -> Tuple[List[int], List[bool]]:
        """Return the sorted clip and its key-frame flags."""
        num_others = self.num_frames - 1
        if video_length == 1 or num_others == 0:
            others = [key_frame_id] * num_others
        else:
            window = _window(key_frame_id, video_length, self.frame_range)
            if self.with_replacement:
                others = random.choices(window, k=num_others)
            elif len(window) >= num_others:
                others = random.sample(window, num_others)
            else:
                others = window + random.choices(
                    window, k=num_others - len(window))
        inds = sorted([key_frame_id] + others)
        flags = [False] * len(inds)
        flags[inds.index(key_frame_id)] = True
        return inds, flags

    def transform(self, video_infos: dict) -> Optional[Dict[str, List]]:
        """Sample the clip and collate it frame-wise."""
        inds, flags = self.sampling_frames(video_infos['video_length'],
                                           _anchor(video_infos))
        results = self.prepare_data(video_infos, inds)
        results['key_frame_flags'] = flags
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f'frame_range={self.frame_range}, '
                f'with_replacement={self.with_replacement}, '
                f'collect_video_keys={self.collect_video_keys})')


@TRANSFORMS.register_module()
class KeyRefClipSample(KeyRefFrameSample):
    """A student key/reference pair plus teacher context frames (OOKD).

    OOKD's teacher sees a clip while the student trains on an IDOL pair
    (paper Sec. 3.2-3.3). The pair is drawn exactly as
    :class:`KeyRefFrameSample` draws it; ``num_frames - 2`` more frames are
    drawn, with replacement, from ``[t-R, t+R]`` around the key frame ``t``.
    The paper does not say which frames feed the teacher during KD; the
    default, 4 frames, is the clip length the teacher is trained on (Sec.
    4.1).

    Frame order is ``[key, reference, context...]`` (context sorted in
    time) and ``key_frame_flags = [True, False, ...]``, so
    ``key_frames_inds[0]`` and ``ref_frames_inds[0]`` are the student's pair
    and clip models sort the frames by ``frame_id``.

    Args:
        num_frames (int): Frames per sample, >= 2. Defaults to 4.
        frame_range (int | list[int]): ``R`` or ``[left, right]`` for both
            the reference and the context frames. Defaults to 10.
        collect_video_keys (list[str]): Video-level keys copied to every
            frame.
    """

    def __init__(self,
                 num_frames: int = 4,
                 frame_range: Union[int, List[int]] = 10,
                 collect_video_keys: List[str] = ['video_id', 'video_length']):
        super().__init__(
            frame_range=frame_range, collect_video_keys=collect_video_keys)
        if not isinstance(num_frames, int) or num_frames < 2:
            raise ValueError(f'num_frames must be an int >= 2 (a key and a '
                             f'reference frame), got {num_frames!r}')
        self.num_frames = num_frames

    def sampling_frames(self, video_length: int,
                        key_frame_id: int) -> Tuple[List[int], List[bool]]:
        """Return ``[key, ref, context...]`` and the key-frame flags."""
        key, ref = super().sampling_frames(video_length, key_frame_id)[0]
        window = _window(key, video_length, self.frame_range) or [key]
        context = sorted(random.choices(window, k=self.num_frames - 2))
        flags = [True] + [False] * (self.num_frames - 1)
        return [key, ref] + context, flags

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f'frame_range={self.frame_range}, '
                f'collect_video_keys={self.collect_video_keys})')
