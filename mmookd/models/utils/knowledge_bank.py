# Copyright (c) mmookd contributors. All rights reserved.
"""OOKD's offline knowledge as a file: one offline feature per ground-truth
instance of the training set.

The paper (Sec. 3.2) aggregates each instance's queries "from the whole set
of video frames" into its offline feature ``f_off``, and distils that
feature into every frame of the instance (Sec. 3.3). The bank is that
knowledge computed once (:func:`mmookd.apis.build_knowledge_bank`: the
frozen teacher over every whole training video, QFA against the ground
truth on the teacher side) and keyed by ``(video id, instance id)``; the
distiller (``OOKD(knowledge_bank=...)``) reads it instead of running a
teacher at every step.

File: ``torch.save`` of a dict with ``format`` / ``version``, the tensors
``embeds`` (E, C) float32, ``video_ids`` / ``instance_ids`` / ``labels`` /
``num_frames`` (E,) int64, ``costs`` / ``agreement`` (E,) float32, and
``meta``: the teacher config (text and sha256 of its model section), the
teacher checkpoint (path and sha256), the annotation file (path and
sha256), the feature kind and the QFA assigner. :meth:`KnowledgeBank.check`
turns any mismatch with what the distiller is given into a clear error.
"""
import hashlib
import json
import os.path as osp
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = [
    'KnowledgeBank', 'KnowledgeBankError', 'file_sha256', 'model_cfg_sha256'
]

BANK_FORMAT = 'mmookd-knowledge-bank'
BANK_VERSION = 1
_TENSORS = ('embeds', 'video_ids', 'instance_ids', 'labels', 'num_frames',
            'costs', 'agreement')


class KnowledgeBankError(ValueError):
    """A knowledge bank that cannot serve this distillation."""


def file_sha256(path: str) -> str:
    """sha256 of a file, read in 1 MiB blocks (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def model_cfg_sha256(model_cfg: Any) -> str:
    """sha256 of a model config, paths of weights left out.

    ``online_checkpoint`` (the weights the teacher was trained on) is left
    out: the teacher checkpoint holds them and has its own hash.
    """
    if hasattr(model_cfg, 'to_dict'):
        model_cfg = model_cfg.to_dict()
    cfg = dict(model_cfg)
    cfg.pop('online_checkpoint', None)
    text = json.dumps(cfg, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class KnowledgeBank:
    """Offline features keyed by ``(video id, instance id)``.

    Args:
        embeds (Tensor): (E, C) offline features (eq. 4's ``f_off``).
        video_ids, instance_ids (Tensor): (E,) the key of every row.
        labels (Tensor, optional): (E,) ground-truth labels.
        num_frames (Tensor, optional): (E,) frames the instance is in.
        costs (Tensor, optional): (E,) mean QFA cost (eq. 2) of the chosen
            teacher query over those frames.
        agreement (Tensor, optional): (E,) share of those frames whose own
            QFA argmin (eq. 3) is the chosen query.
        meta (dict, optional): Provenance (module docstring).
    """

    def __init__(self,
                 embeds: Tensor,
                 video_ids: Tensor,
                 instance_ids: Tensor,
                 labels: Optional[Tensor] = None,
                 num_frames: Optional[Tensor] = None,
                 costs: Optional[Tensor] = None,
                 agreement: Optional[Tensor] = None,
                 meta: Optional[dict] = None) -> None:
        num = embeds.size(0)
        self.embeds = embeds.detach().float().cpu()
        self.video_ids = torch.as_tensor(video_ids, dtype=torch.long)
        self.instance_ids = torch.as_tensor(instance_ids, dtype=torch.long)
        fill = torch.full((num, ), -1, dtype=torch.long)
        self.labels = fill.clone() if labels is None else torch.as_tensor(
            labels, dtype=torch.long)
        self.num_frames = fill.clone() if num_frames is None else \
            torch.as_tensor(num_frames, dtype=torch.long)
        nan = torch.full((num, ), float('nan'))
        self.costs = nan.clone() if costs is None else torch.as_tensor(
            costs, dtype=torch.float32)
        self.agreement = nan.clone() if agreement is None else \
            torch.as_tensor(agreement, dtype=torch.float32)
        self.meta = dict(meta or {})
        for name in _TENSORS:
            if getattr(self, name).size(0) != num:
                raise KnowledgeBankError(
                    f'knowledge bank: {name} has {getattr(self, name).size(0)}'
                    f' rows, embeds {num}')
        self._rows: Dict[Tuple[int, int], int] = {}
        for row, key in enumerate(
                zip(self.video_ids.tolist(), self.instance_ids.tolist())):
            if key in self._rows:
                raise KnowledgeBankError(
                    f'knowledge bank: two entries for (video {key[0]}, '
                    f'instance {key[1]})')
            self._rows[key] = row

    def __len__(self) -> int:
        return self.embeds.size(0)

    def __contains__(self, key: Tuple[int, int]) -> bool:
        return (int(key[0]), int(key[1])) in self._rows

    @property
    def path(self) -> Optional[str]:
        """The file it was loaded from (None if built in memory)."""
        return self.meta.get('loaded_from')

    # ------------------------------------------------------------------
    # file
    # ------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the bank (``torch.save`` of tensors and plain metadata)."""
        data = {name: getattr(self, name) for name in _TENSORS}
        meta = {k: v for k, v in self.meta.items() if k != 'loaded_from'}
        data.update(format=BANK_FORMAT, version=BANK_VERSION, meta=meta)
        dirname = osp.dirname(osp.abspath(path))
        if not osp.isdir(dirname):
            raise FileNotFoundError(f'knowledge bank: no directory {dirname}')
        torch.save(data, path)

    @classmethod
    def load(cls, path: str) -> 'KnowledgeBank':
        """Read a bank written by :meth:`save` (tensors only, no pickled
        code: ``weights_only=True``)."""
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'knowledge bank {path!r} not found: build it with '
                'tools/analysis/build_knowledge_bank.py TEACHER_CONFIG '
                'TEACHER_CHECKPOINT --out PATH')
        try:
            data = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:
            raise KnowledgeBankError(f'{path} is not a knowledge bank file '
                                     f'({type(err).__name__}: {err})') from err
        if not isinstance(data, dict) or data.get('format') != BANK_FORMAT:
            raise KnowledgeBankError(
                f'{path} is not a knowledge bank file (no '
                f'format={BANK_FORMAT!r})')
        if data.get('version') != BANK_VERSION:
            raise KnowledgeBankError(
                f'{path}: knowledge bank version {data.get("version")}, this '
                f'mmookd reads version {BANK_VERSION}; build it again')
        missing = [n for n in _TENSORS if n not in data]
        if missing:
            raise KnowledgeBankError(f'{path}: knowledge bank without '
                                     f'{missing}')
        meta = dict(data.get('meta') or {})
        meta['loaded_from'] = path
        return cls(**{n: data[n] for n in _TENSORS}, meta=meta)

    # ------------------------------------------------------------------
    # provenance
    # ------------------------------------------------------------------
    def check(self,
              teacher_config: Any = None,
              teacher_checkpoint: Optional[str] = None,
              ann_file: Optional[str] = None) -> None:
        """Refuse a bank from another teacher or dataset, or a stale one.

        Args:
            teacher_config (str | dict, optional): The teacher config file
                (or its model dict) the distillation expects.
            teacher_checkpoint (str, optional): Its checkpoint.
            ann_file (str, optional): The training annotation file.

        Raises:
            KnowledgeBankError: Naming what differs and what to do.
        """
        where = self.path or 'the knowledge bank'
        rebuild = ('build the bank again with '
                   'tools/analysis/build_knowledge_bank.py')
        if teacher_config is not None:
            model_cfg = teacher_config
            if isinstance(teacher_config, str):
                from mmengine.config import Config
                model_cfg = Config.fromfile(teacher_config).model
            elif 'model' in teacher_config:
                model_cfg = teacher_config['model']
            digest = model_cfg_sha256(model_cfg)
            if digest != self.meta.get('teacher_config_sha256'):
                raise KnowledgeBankError(
                    f'{where} was built from another teacher config '
                    f'({self.meta.get("teacher_config")!r}, model sha256 '
                    f'{str(self.meta.get("teacher_config_sha256"))[:12]}), '
                    f'not {_name(teacher_config)} (sha256 {digest[:12]}); '
                    f'{rebuild}')
        if teacher_checkpoint is not None:
            self._check_file('teacher checkpoint', teacher_checkpoint,
                             'teacher_checkpoint', where, rebuild)
        if ann_file is not None:
            self._check_file('annotation file', ann_file, 'ann_file', where,
                             rebuild)

    def _check_file(self, what: str, path: str, key: str, where: str,
                    rebuild: str) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} not found')
        digest = file_sha256(path)
        built_from = self.meta.get(key)
        if digest == self.meta.get(f'{key}_sha256'):
            return
        same_file = built_from is not None and osp.abspath(
            built_from) == osp.abspath(path)
        if same_file:
            raise KnowledgeBankError(
                f'{where} is stale: {what} {path} changed since the bank '
                f'was built (sha256 {digest[:12]}, was '
                f'{str(self.meta.get(key + "_sha256"))[:12]}); {rebuild}')
        raise KnowledgeBankError(
            f'{where} was built from another {what} ({built_from!r}), '
            f'not {path!r}; {rebuild}')

    # ------------------------------------------------------------------
    # lookup
    # ------------------------------------------------------------------
    def rows(self, keys: Iterable[Tuple[int, int]]) -> Tensor:
        """Row of every ``(video id, instance id)`` key.

        Raises:
            KeyError: Naming the missing keys (an instance the bank was not
                built for: another dataset, or a filtered-out video).
        """
        keys = [(int(v), int(i)) for v, i in keys]
        missing = [k for k in keys if k not in self._rows]
        if missing:
            shown = ', '.join(f'(video {v}, instance {i})'
                              for v, i in missing[:5])
            more = f' and {len(missing) - 5} more' if len(missing) > 5 else ''
            raise KeyError(
                f'{self.path or "knowledge bank"}: no entry for {shown}{more}'
                f' ({len(self)} entries from '
                f'{self.meta.get("ann_file")!r}); was it built for this '
                'training set?')
        return torch.as_tensor([self._rows[k] for k in keys], dtype=torch.long)

    def features(self, keys: Sequence[Tuple[int, int]]) -> Tensor:
        """(len(keys), C) offline features of the keys (:meth:`rows`)."""
        return self.embeds[self.rows(keys)]


def _name(config: Any) -> str:
    return repr(config) if isinstance(config, str) else 'the given config'
