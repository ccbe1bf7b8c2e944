# Copyright (c) mmookd contributors. All rights reserved.
"""Minor-Paste (OOKD paper Sec. 3.4, eq. 6) and Clip-Paste for video clips.

VIS training data is long-tailed (YouTube-VIS 2021: 35.5% 'person', 0.3%
'squirrel'), so a distilled student sees little teacher knowledge of rare
classes. Minor-Paste copies whole instance tubes of a source clip that
contains a minor class onto the training clip, each tube with the
probability ``p_c^s = k (max p - p_c) / (max p - min p)`` of its class
(eq. 6), so the most frequent class is never pasted and the rarest one with
probability ``k``. Clip-Paste (TubeFormer, the paper's Table 7 baseline)
pastes every tube with one fixed probability.
"""
from collections import Counter
from typing import (
    Any,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import BaseBoxes, HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from ..ytvis import VIS_METAINFOS, VISDataError, load_vis_json, parse_vis_json

__all__ = [
    'MinorPaste', 'vis_class_counts', 'class_shares_from_counts',
    'minor_paste_probs'
]

# Per-instance keys kept in sync with the masks (per frame).
_INSTANCE_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_instances_ids',
                  'gt_ignore_flags')


def _label_order(categories: List[dict], ann_file: str,
                 classes: Optional[Sequence[str]]) -> List[Any]:
    """Category id of every contiguous label, as ``YTVISDataset`` orders
    them: by name after ``classes`` if given, else by category id."""
    if classes is None:
        return [c['id'] for c in sorted(categories, key=lambda c: c['id'])]
    name2id: Dict[str, Any] = {}
    for cat in categories:
        name2id.setdefault(cat['name'], cat['id'])
    missing = [name for name in classes if name not in name2id]
    if missing:
        raise VISDataError(
            f'{ann_file}: class(es) {missing} are not categories of this '
            f"file (it has {[c['name'] for c in categories]})")
    return [name2id[name] for name in classes]


def vis_class_counts(
    ann_file: str,
    classes: Optional[Sequence[str]] = None,
    dataset_version: Optional[str] = None,
    backend_args: Optional[dict] = None
) -> Tuple[Dict[int, int], Tuple[str, ...]]:
    """Instances (tubes) per contiguous label in a VIS annotation file.

    Native YouTube-VIS / OVIS JSON: one annotation = one instance tube.
    CocoVID (one annotation per frame): unique ``(video, instance_id)``
    pairs; annotations without ``instance_id`` count once each (plain COCO).
    Labels follow :class:`mmookd.datasets.YTVISDataset`: ``classes`` (or
    ``dataset_version``'s preset) matched by name, else categories sorted by
    id. Classes without instances are listed with count 0.

    Args:
        ann_file (str): Annotation JSON.
        classes (Sequence[str], optional): Class names in label order.
        dataset_version (str, optional): '2019', '2021', '2022' or 'ovis',
            used when ``classes`` is None.
        backend_args (dict, optional): File backend arguments.

    Returns:
        tuple[dict[int, int], tuple[str]]: counts per label and the class
        names in label order.

    Raises:
        VISDataError: naming ``ann_file`` if it is missing or malformed.
    """
    if classes is None and dataset_version is not None:
        version = str(dataset_version).lower()
        if version not in VIS_METAINFOS:
            raise ValueError(f'unknown dataset_version {dataset_version!r}; '
                             f'choose one of {sorted(VIS_METAINFOS)}')
        classes = VIS_METAINFOS[version]['classes']
    data = load_vis_json(ann_file, backend_args)
    anns = data.get('annotations') or []
    if not isinstance(anns, list):
        raise VISDataError(f"{ann_file}: 'annotations' must be a list")
    is_cocovid = len(anns) > 0 and all(
        isinstance(a, dict) and 'segmentations' not in a and 'image_id' in a
        for a in anns)
    if is_cocovid:
        if not isinstance(data.get('categories'), list):
            raise VISDataError(f"{ann_file}: missing 'categories' list")
        categories = data['categories']
        img2video = {
            img.get('id'): img.get('video_id')
            for img in data.get('images') or []
        }
        instances = set()
        for i, ann in enumerate(anns):
            if 'category_id' not in ann:
                raise VISDataError(
                    f'{ann_file}: annotation #{i} has no category_id')
            if ann.get('instance_id') is None:
                key = ('ann', i)
            else:
                video = ann.get('video_id', img2video.get(ann['image_id']))
                key = (video, ann['instance_id'])
            instances.add((ann['category_id'], key))
        cat_counts = Counter(cat for cat, _ in instances)
    else:
        parsed = parse_vis_json(data, ann_file)
        categories = parsed.categories
        cat_counts = Counter(ann['category_id']
                             for video_anns in parsed.anns_by_video.values()
                             for ann in video_anns)
    cat_ids = _label_order(categories, ann_file, classes)
    id2name = {c['id']: c['name'] for c in categories}
    counts = {i: int(cat_counts.get(cid, 0)) for i, cid in enumerate(cat_ids)}
    return counts, tuple(id2name[cid] for cid in cat_ids)


def class_shares_from_counts(
        counts: Union[Mapping[int, float],
                      Sequence[float]]) -> Dict[int, float]:
    """Normalise counts (or shares) per label to ``p_c`` summing to 1."""
    if not isinstance(counts, Mapping):
        counts = dict(enumerate(counts))
    counts = {int(k): float(v) for k, v in counts.items()}
    if any(v < 0 for v in counts.values()):
        raise ValueError(f'class shares must be >= 0, got {counts}')
    total = sum(counts.values())
    if total <= 0:
        raise ValueError('class shares/counts sum to 0: no instances')
    return {k: v / total for k, v in counts.items()}


def minor_paste_probs(shares: Mapping[int, float],
                      k: float = 0.7) -> Dict[int, float]:
    """Paste probability per label, eq. 6:
    ``p_c^s = k (max p - p_c) / (max p - min p)``.

    Min and max run over all given labels. When every share is equal there
    is no imbalance and every probability is 0.
    """
    if not shares:
        return {}
    p_max, p_min = max(shares.values()), min(shares.values())
    if p_max == p_min:
        return {c: 0.0 for c in shares}
    return {c: k * (p_max - p) / (p_max - p_min) for c, p in shares.items()}


def _tight_boxes(masks: np.ndarray) -> np.ndarray:
    """(n, 4) float32 xyxy boxes of (n, H, W) masks, mmdet's convention
    (``x2 = last column + 1``); masks must be non-empty."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        xs = np.flatnonzero(mask.any(0))
        ys = np.flatnonzero(mask.any(1))
        boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def _boxes_array(boxes: Union[np.ndarray, BaseBoxes]) -> np.ndarray:
    if isinstance(boxes, BaseBoxes):
        if not isinstance(boxes, HorizontalBoxes):
            raise TypeError(f'MinorPaste supports horizontal boxes only, got '
                            f'{type(boxes).__name__}')
        return boxes.numpy().astype(np.float32).reshape(-1, 4)
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def _boxes_like(like: Union[np.ndarray, BaseBoxes],
                boxes: np.ndarray) -> Union[np.ndarray, BaseBoxes]:
    if isinstance(like, BaseBoxes):
        return type(like)(boxes)
    return boxes.astype(like.dtype if like.dtype.kind == 'f' else np.float32)


def _instance_labels(info: dict) -> List[Tuple[Any, int]]:
    """``(tube key, label)`` of every instance entry of a data info (video:
    ``images[*].instances``; image: ``instances``)."""
    out = []
    frames = info.get('images', [info])
    for f, frame in enumerate(frames):
        for j, inst in enumerate(frame.get('instances', [])):
            key = inst.get('instance_id', (f, j))
            out.append((key, int(inst['bbox_label'])))
    return out


@TRANSFORMS.register_module()
class MinorPaste(BaseTransform):
    """Paste instance tubes of another clip, minor classes more often
    (OOKD Sec. 3.4, eq. 6), or every tube alike (Clip-Paste).

    A mix transform like mmdet's ``CopyPaste``: wrap the dataset in
    ``MultiImageMixDataset``, which calls :meth:`get_indexes` for a source
    clip, runs the dataset's pipeline (frame sampling + broadcast loading)
    on it, and hands it over as ``results['mix_results'][0]``; put
    ``MinorPaste`` in the wrapper's pipeline before ``PackTrackInputs``.

    Every pasted tube gets a new instance id in the target clip; where it
    came from is kept in ``results['instance_sources']`` (per frame a dict
    ``{new id: (source video id, source instance id)}``, empty when
    nothing was pasted), so the distiller can read the pasted instance's
    own offline knowledge (``OOKD(knowledge_bank=...)``). Pack it with
    ``PackTrackInputs(meta_keys=('instance_sources', ))``.
    Without the wrapper, set ``results['mix_results'] = [source]`` yourself.
    Both results use the per-frame list format of mmdet's video pipelines
    (``img``, ``gt_masks``, ``gt_bboxes``, ``gt_bboxes_labels``,
    ``gt_instances_ids``, ``gt_ignore_flags``: one entry per frame); a
    single-image result (no lists) is a 1-frame clip. So the same transform
    serves the student's 2-frame key/reference samples and the teacher's
    T-frame clips.

    What is pasted:

    - ``mode='minor'``: each source tube (one ``gt_instances_ids`` value,
      one draw for all its frames) with ``p_c^s`` of its class (eq. 6).
      :meth:`get_indexes` draws source clips with at least one instance of
      a minor class (``p_c < minor_thr``), uniformly at random if none has.
    - ``mode='clip'``: each tube with ``clip_paste_prob`` (0.5 by default;
      the paper does not state TubeFormer's rate), random source clips.
    - ``max_paste``: at most this many tubes (a random subset) per clip.

    How: source frame ``i`` goes onto target frame ``i``; a shorter source
    clip is cycled (frame ``i mod S``). Source frames of another size are
    resized (bilinear image, nearest masks) to the target frame size, i.e.
    pasted at the same relative position; so nothing lands outside the
    image. Pasted pixels overwrite the target; target masks lose the pasted
    area, their boxes are recomputed from the cut masks (untouched
    instances keep their boxes), and instances fully hidden in a frame are
    dropped from that frame. Pasted instances keep their label and ignore
    flag, get a box tight to their mask and a fresh instance id above every
    target id (the same id in every frame). Empty pasted masks (absent or
    resized away) are not added. Only ``img`` and the per-instance ``gt_*``
    keys are updated (raw ``instances`` lists are left as loaded); frames
    with a paste hold :obj:`BitmapMasks`.

    Class shares ``p_c`` (share of class c among all training instances,
    normalised to sum 1) come from, in this order: ``class_shares``
    (``{label: share or count}`` or a list indexed by label), ``ann_file``
    (instances counted per category, labels ordered as ``YTVISDataset``
    does; pass ``classes``/``dataset_version`` if the dataset does), or the
    wrapped dataset's own annotations on the first :meth:`get_indexes`
    call (tubes per label, after the dataset's filtering). Min and max of
    eq. 6 run over all classes, including classes without instances.
    Labels absent from ``class_shares`` are never pasted.

    Randomness uses ``np.random`` (mmdet's convention), so seeds apply.

    Args:
        mode (str): ``'minor'`` (Minor-Paste) or ``'clip'`` (Clip-Paste).
            Defaults to ``'minor'``.
        class_shares (dict | list, optional): Share or count per label.
        ann_file (str, optional): Training annotation JSON (native
            YouTube-VIS/OVIS or CocoVID) to count instances in.
        classes (Sequence[str], optional): Class names in label order, for
            ``ann_file`` (as the dataset's ``metainfo['classes']``).
        dataset_version (str, optional): Class preset for ``ann_file``
            ('2019', '2021', '2022', 'ovis') when ``classes`` is None.
        k (float): Scale of eq. 6. Defaults to 0.7 (paper).
        minor_thr (float): Classes with ``p_c`` below it are minor.
            Defaults to 0.10 (paper).
        clip_paste_prob (float): Per-tube probability in ``'clip'`` mode.
            Defaults to 0.5.
        max_paste (int, optional): Most tubes pasted per clip. Defaults to
            None (no limit).
        backend_args (dict, optional): File backend for ``ann_file``.
    """

    def __init__(self,
                 mode: str = 'minor',
                 class_shares: Optional[Union[Mapping[int, float],
                                              Sequence[float]]] = None,
                 ann_file: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None,
                 dataset_version: Optional[str] = None,
                 k: float = 0.7,
                 minor_thr: float = 0.10,
                 clip_paste_prob: float = 0.5,
                 max_paste: Optional[int] = None,
                 backend_args: Optional[dict] = None) -> None:
        if mode not in ('minor', 'clip'):
            raise ValueError(f"mode must be 'minor' or 'clip', got {mode!r}")
        if not 0 <= k <= 1:
            raise ValueError(f'k must be in [0, 1], got {k}')
        if not 0 <= clip_paste_prob <= 1:
            raise ValueError(
                f'clip_paste_prob must be in [0, 1], got {clip_paste_prob}')
        if max_paste is not None and max_paste < 0:
            raise ValueError(f'max_paste must be >= 0, got {max_paste}')
        self.mode = mode
        self.k = k
        self.minor_thr = minor_thr
        self.clip_paste_prob = clip_paste_prob
        self.max_paste = max_paste
        self.ann_file = ann_file
        self.class_names: Optional[Tuple[str, ...]] = None
        self.class_shares: Optional[Dict[int, float]] = None
        self.paste_probs: Optional[Dict[int, float]] = None
        if class_shares is not None:
            self._set_shares(class_shares)
        elif ann_file is not None:
            counts, self.class_names = vis_class_counts(
                ann_file, classes, dataset_version, backend_args)
            self._set_shares(counts)
        self._source_key: Optional[Tuple[int, int]] = None
        self._source_inds: List[int] = []

    def _set_shares(
            self, counts: Union[Mapping[int, float], Sequence[float]]) -> None:
        self.class_shares = class_shares_from_counts(counts)
        self.paste_probs = minor_paste_probs(self.class_shares, self.k)

    @property
    def minor_labels(self) -> Set[int]:
        """Labels with ``p_c < minor_thr`` (source clip criterion)."""
        if self.class_shares is None:
            return set()
        return {c for c, p in self.class_shares.items() if p < self.minor_thr}

    def _scan(self, dataset) -> None:
        """Find the source candidates (and, if needed, the class shares)."""
        infos = [
            _instance_labels(dataset.get_data_info(i))
            for i in range(len(dataset))
        ]
        classes = dataset.metainfo.get('classes', None)
        if self.class_names is not None and classes is not None and \
                tuple(classes) != self.class_names:
            raise ValueError(
                f'MinorPaste: the classes of ann_file {self.ann_file!r} '
                f'{self.class_names} differ from the dataset classes '
                f'{tuple(classes)}; pass the same `classes` or '
                '`dataset_version` to MinorPaste')
        if self.class_shares is None and self.mode == 'minor':
            counts = Counter({c: 0 for c in range(len(classes or ()))})
            for info in infos:
                counts.update(dict(info).values())  # one count per tube
            self._set_shares(dict(counts))
        minor = self.minor_labels
        self._source_inds = [
            i for i, info in enumerate(infos)
            if any(label in minor for _, label in info)
        ]
        self._source_key = (id(dataset), len(dataset))

    def get_indexes(self, dataset) -> List[int]:
        """Index of the source clip (called by ``MultiImageMixDataset``).

        Minor mode: a uniformly random clip among those with at least one
        minor-class instance (found on the first call), any clip if none.
        Clip mode: any clip.
        """
        if self.mode == 'minor':
            if self._source_key != (id(dataset), len(dataset)):
                self._scan(dataset)
            if self._source_inds:
                return [
                    self._source_inds[np.random.randint(
                        len(self._source_inds))]
                ]
        return [int(np.random.randint(len(dataset)))]

    def _paste_prob(self, label: int) -> float:
        if self.mode == 'clip':
            return self.clip_paste_prob
        return self.paste_probs.get(int(label), 0.0)

    def _select_tubes(self, src: Dict[str, list]) -> Dict[Any, int]:
        """Draw the tubes to paste: ``{source id: rank}``, source order."""
        tubes: Dict[Any, int] = {}
        for labels, ids in zip(src['gt_bboxes_labels'], src['ids']):
            for tid, label in zip(ids, labels):
                tubes.setdefault(tid, int(label))
        tube_ids = list(tubes)
        probs = np.array([self._paste_prob(tubes[t]) for t in tube_ids])
        draws = np.random.rand(len(tube_ids))
        chosen = [t for t, d, p in zip(tube_ids, draws, probs) if d < p]
        if self.max_paste is not None and len(chosen) > self.max_paste:
            keep = np.sort(
                np.random.choice(len(chosen), self.max_paste, replace=False))
            chosen = [chosen[i] for i in keep]
        return {t: rank for rank, t in enumerate(chosen)}

    @staticmethod
    def _as_clip(results: dict, name: str) -> Tuple[Dict[str, list], bool]:
        """Per-frame lists of the keys used (a single image -> 1 frame)."""
        for key in ('img', 'gt_masks', 'gt_bboxes_labels'):
            if key not in results:
                raise KeyError(f'MinorPaste: the {name} results have no '
                               f'{key!r} (load annotations with masks first)')
        single = not isinstance(results['img'], list)
        clip = {
            key: [results[key]] if single else list(results[key])
            for key in ('img', 'gt_masks') + _INSTANCE_KEYS if key in results
        }
        num = len(clip['img'])
        if any(len(v) != num for v in clip.values()):
            raise ValueError(f'MinorPaste: the {name} per-frame lists differ '
                             'in length')
        return clip, single

    def transform(self, results: dict) -> dict:
        """Paste the selected source tubes onto every frame of the clip.

        Args:
            results (dict): Target clip with ``mix_results`` (one source).

        Returns:
            dict: The updated results (``mix_results`` removed).
        """
        mix = results.pop('mix_results', None)
        if not mix:
            raise KeyError(
                "MinorPaste needs results['mix_results'] = [source clip]: "
                'use it in a MultiImageMixDataset pipeline (which calls '
                'get_indexes) or set mix_results yourself')
        if len(mix) != 1:
            raise ValueError(f'MinorPaste pastes from one source clip, got '
                             f'{len(mix)}')
        if self.mode == 'minor' and self.paste_probs is None:
            raise RuntimeError(
                'MinorPaste has no class shares: give class_shares or '
                'ann_file, or let MultiImageMixDataset call get_indexes')
        dst, single = self._as_clip(results, 'target')
        src, _ = self._as_clip(mix[0], 'source')
        self._record_sources(results, len(dst['img']), single, mix[0], {})
        if len(src['img']) == 0 or len(dst['img']) == 0:
            return results
        if 'gt_instances_ids' in src:
            src['ids'] = [[int(t) for t in ids]
                          for ids in src['gt_instances_ids']]
        elif len(src['img']) == 1:
            src['ids'] = [list(range(len(src['gt_bboxes_labels'][0])))]
        else:
            raise KeyError('MinorPaste: a multi-frame source needs '
                           "'gt_instances_ids' to tell instance tubes apart")
        chosen = self._select_tubes(src)
        if not chosen:
            return results
        first_id = 0
        if 'gt_instances_ids' in dst:
            first_id = max([
                int(ids.max()) + 1
                for ids in dst['gt_instances_ids'] if len(ids) > 0
            ],
                           default=0)
        new_ids = {t: first_id + rank for t, rank in chosen.items()}
        self._record_sources(results, len(dst['img']), single, mix[0], new_ids)
        num_src = len(src['img'])
        for i in range(len(dst['img'])):
            self._paste_frame(dst, i, src, i % num_src, new_ids)
        for key, values in dst.items():
            results[key] = values[0] if single else values
        return results

    @staticmethod
    def _record_sources(results: dict, num_frames: int, single: bool,
                        source: dict, new_ids: Dict[Any, int]) -> None:
        """Add ``{new id: (source video, source instance)}`` of the pasted
        tubes to every target frame's ``instance_sources``."""
        sources = results.get('instance_sources')
        if sources is None:
            sources = [{} for _ in range(num_frames)]
        elif single:
            sources = [sources]
        sources = [dict(s) for s in sources]
        if new_ids:
            video = source.get('video_id')
            if isinstance(video, (list, tuple)):
                video = video[0] if video else None
            src_sources = source.get('instance_sources') or {}
            if isinstance(src_sources, (list, tuple)):
                merged = {}
                for frame_sources in src_sources:
                    merged.update(frame_sources)
                src_sources = merged
            for src_id, new_id in new_ids.items():
                origin = src_sources.get(src_id)
                if origin is None:
                    origin = (-1 if video is None else int(video), int(src_id))
                for frame_sources in sources:
                    frame_sources[int(new_id)] = tuple(origin)
        results['instance_sources'] = sources[0] if single else sources

    def _paste_frame(self, dst: Dict[str, list], i: int, src: Dict[str, list],
                     s: int, new_ids: Dict[Any, int]) -> None:
        """Paste the chosen tubes of source frame ``s`` on target frame
        ``i`` (in place on the per-frame lists of ``dst``)."""
        rows = np.array(
            [j for j, t in enumerate(src['ids'][s]) if t in new_ids],
            dtype=np.int64)
        if len(rows) == 0:
            return
        img = dst['img'][i]
        height, width = img.shape[:2]
        src_img = src['img'][s]
        src_masks = np.asarray(src['gt_masks'][s].to_ndarray())[rows].astype(
            np.uint8)
        if src_img.shape[:2] != (height, width):
            src_img = mmcv.imresize(src_img, (width, height))
            src_masks = BitmapMasks(src_masks, *src_masks.shape[1:]).resize(
                (height, width)).masks
        src_masks = src_masks.astype(bool)
        nonempty = src_masks.any(axis=(1, 2))
        rows, src_masks = rows[nonempty], src_masks[nonempty]
        if len(rows) == 0:
            return
        union = src_masks.any(0)

        dst_masks = np.asarray(dst['gt_masks'][i].to_ndarray()).astype(bool)
        if dst_masks.shape[1:] != (height, width):
            raise ValueError(
                f'MinorPaste: target masks {dst_masks.shape[1:]} and image '
                f'{(height, width)} differ in size in frame {i}')
        hidden = (dst_masks & union).any(axis=(1, 2))
        cut_masks = dst_masks & ~union
        keep = cut_masks.any(axis=(1, 2))

        new_img = img.copy()
        new_img[union] = src_img[union].astype(img.dtype)
        dst['img'][i] = new_img
        masks = np.concatenate([cut_masks[keep], src_masks])
        dst['gt_masks'][i] = BitmapMasks(masks.astype(np.uint8), height, width)
        if 'gt_bboxes' in dst:
            boxes = _boxes_array(dst['gt_bboxes'][i]).copy()
            if hidden.any():
                boxes[hidden & keep] = _tight_boxes(cut_masks[hidden & keep])
            boxes = np.concatenate([boxes[keep], _tight_boxes(src_masks)])
            dst['gt_bboxes'][i] = _boxes_like(dst['gt_bboxes'][i], boxes)
        labels = dst['gt_bboxes_labels'][i]
        dst['gt_bboxes_labels'][i] = np.concatenate(
            [labels[keep],
             src['gt_bboxes_labels'][s][rows]]).astype(labels.dtype)
        if 'gt_instances_ids' in dst:
            ids = dst['gt_instances_ids'][i]
            pasted_ids = [new_ids[src['ids'][s][j]] for j in rows]
            dst['gt_instances_ids'][i] = np.concatenate(
                [ids[keep], np.array(pasted_ids)]).astype(ids.dtype)
        if 'gt_ignore_flags' in dst:
            flags = dst['gt_ignore_flags'][i]
            if 'gt_ignore_flags' in src:
                pasted_flags = src['gt_ignore_flags'][s][rows]
            else:
                pasted_flags = np.zeros(len(rows), dtype=bool)
            dst['gt_ignore_flags'][i] = np.concatenate(
                [flags[keep], pasted_flags]).astype(flags.dtype)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mode={self.mode!r}, k={self.k}, '
                f'minor_thr={self.minor_thr}, '
                f'clip_paste_prob={self.clip_paste_prob}, '
                f'max_paste={self.max_paste}, ann_file={self.ann_file!r})')
