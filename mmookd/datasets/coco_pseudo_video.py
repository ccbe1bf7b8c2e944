# Copyright (c) mmookd contributors. All rights reserved.
"""COCO instances, optionally relabelled to a VIS vocabulary, for IDOL's
pre-training on pseudo key/reference pairs.

IDOL (Wu et al., "In Defense of Online Models for Video Instance
Segmentation", ECCV 2022, implementation details; step 2 of VNext's
``projects/IDOL/IDOL.md``) pre-trains on COCO images turned into pseudo
key/reference pairs. The official recipe (VNext
``projects/IDOL/configs/coco_pretrain/r50_coco_sequence.yaml``) trains on
detectron2's ``coco_2017_train`` with all 80 classes (preset ``'coco'``).
Mapping the COCO categories to a VIS vocabulary with the
``coco2ytvis2019`` / ``coco2ytvis2021`` / ``coco2ovis`` tables of VITA,
MinVIS and their successors (annotations of unmapped categories dropped) is
an option that keeps the classifier's shape for the fine-tuning.
:class:`CocoPseudoVideoDataset` does either while loading the plain COCO
JSON, so no converted file is needed; the
:class:`~mmookd.datasets.transforms.PseudoKeyRefPair` transform then makes
the two views.
"""
import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.fileio import exists, get_local_path
from mmengine.logging import print_log

from .ytvis import OVIS_CLASSES, YTVIS_2019_CLASSES, YTVIS_2021_CLASSES

__all__ = [
    'CocoPseudoVideoDataset', 'COCO_CLASSES', 'COCO_TO_COCO',
    'COCO_TO_YTVIS_2019', 'COCO_TO_YTVIS_2021', 'COCO_TO_OVIS',
    'COCO_CATEGORY_MAPS'
]

# COCO category id -> target category id (1-based, the official id of the
# VIS dataset, i.e. index + 1 in its class tuple), as in the
# coco2ytvis2019 / coco2ytvis2021 / coco2ovis conversions used by IDOL,
# VITA, MinVIS and their successors. Several COCO categories can map to one
# target (bicycle and motorcycle -> motorbike; skis and snowboard ->
# snowboard; car and truck / bus -> OVIS 'Vehical').
COCO_TO_YTVIS_2019 = {
    1: 1,  # person -> person
    2: 21,  # bicycle -> motorbike
    3: 6,  # car -> sedan
    4: 21,  # motorcycle -> motorbike
    5: 28,  # airplane -> airplane
    7: 17,  # train -> train
    8: 29,  # truck -> truck
    9: 34,  # boat -> boat
    17: 14,  # cat -> cat
    18: 8,  # dog -> dog
    19: 18,  # horse -> horse
    21: 15,  # cow -> cow
    22: 32,  # elephant -> elephant
    23: 20,  # bear -> bear
    24: 30,  # zebra -> zebra
    25: 22,  # giraffe -> giraffe
    35: 33,  # skis -> snowboard
    36: 33,  # snowboard -> snowboard
    41: 5,  # skateboard -> skateboard
    42: 27,  # surfboard -> surfboard
    43: 40,  # tennis racket -> tennis_racket
}
COCO_TO_YTVIS_2021 = {
    1: 26,  # person -> person
    2: 23,  # bicycle -> motorbike
    3: 5,  # car -> car
    4: 23,  # motorcycle -> motorbike
    5: 1,  # airplane -> airplane
    7: 36,  # train -> train
    8: 37,  # truck -> truck
    9: 4,  # boat -> boat
    16: 3,  # bird -> bird
    17: 6,  # cat -> cat
    18: 9,  # dog -> dog
    19: 19,  # horse -> horse
    21: 7,  # cow -> cow
    22: 12,  # elephant -> elephant
    23: 2,  # bear -> bear
    24: 40,  # zebra -> zebra
    25: 18,  # giraffe -> giraffe
    34: 14,  # frisbee -> flying_disc
    35: 31,  # skis -> snowboard
    36: 31,  # snowboard -> snowboard
    41: 29,  # skateboard -> skateboard
    42: 33,  # surfboard -> surfboard
    43: 34,  # tennis racket -> tennis_racket
}
COCO_TO_OVIS = {
    1: 1,  # person -> Person
    2: 21,  # bicycle -> Bicycle
    3: 25,  # car -> Vehical
    4: 22,  # motorcycle -> Motorcycle
    5: 23,  # airplane -> Airplane
    6: 25,  # bus -> Vehical
    8: 25,  # truck -> Vehical
    9: 24,  # boat -> Boat
    17: 3,  # cat -> Cat
    18: 4,  # dog -> Dog
    19: 5,  # horse -> Horse
    20: 6,  # sheep -> Sheep
    21: 7,  # cow -> Cow
    22: 8,  # elephant -> Elephant
    23: 9,  # bear -> Bear
    24: 10,  # zebra -> Zebra
    25: 11,  # giraffe -> Giraffe
}

#: The 80 COCO classes in mmdet's order, which is the order of the category
#: ids and so detectron2's contiguous ids (official 80-class IDOL heads).
COCO_CLASSES = tuple(CocoDataset.METAINFO['classes'])
#: Identity over the 80 COCO categories (by name): IDOL's own step-2
#: pre-training, all classes and annotations of ``coco_2017_train``.
COCO_TO_COCO = {name: name for name in COCO_CLASSES}

#: Named presets for ``category_map``: (COCO id or name -> target id or
#: name, classes).
COCO_CATEGORY_MAPS = {
    'coco': (COCO_TO_COCO, COCO_CLASSES),
    'coco2ytvis2019': (COCO_TO_YTVIS_2019, YTVIS_2019_CLASSES),
    'coco2ytvis2021': (COCO_TO_YTVIS_2021, YTVIS_2021_CLASSES),
    'coco2ovis': (COCO_TO_OVIS, OVIS_CLASSES),
}

CategoryMap = Union[str, Mapping[Union[int, str], Union[int, str]]]


@DATASETS.register_module()
class CocoPseudoVideoDataset(CocoDataset):
    """COCO instance annotations, possibly mapped to a target vocabulary.

    A plain mmdet ``CocoDataset`` (one item per image, ``data_prefix=dict(
    img=...)``) whose ``metainfo['classes']`` is the *target* vocabulary
    (e.g. YouTube-VIS 2021) and whose instance labels come from
    ``category_map``; annotations of unmapped COCO categories are dropped.
    Meant for training with :class:`PseudoKeyRefPair`; mmdet's COCO metrics
    do not apply (several COCO categories may share one label).

    Args:
        category_map (str | dict): A preset name (``'coco'``: the 80
            COCO classes, IDOL's official pre-training; ``'coco2ytvis2019'``,
            ``'coco2ytvis2021'``, ``'coco2ovis'``; then ``classes``
            default to that dataset's) or a dict from COCO category (id as
            int, or name as str) to target class (name as str, or 1-based
            id in ``classes`` as int). Defaults to ``'coco2ytvis2021'``.
        metainfo (dict, optional): ``classes`` = target vocabulary
            (required with a dict ``category_map``).
        filter_cfg (dict, optional): ``filter_empty_gt`` drops images
            without a (non-crowd) instance of a mapped category after the
            mapping (detectron2's FILTER_EMPTY_ANNOTATIONS, True in IDOL's
            COCO pre-training); ``min_size`` as in ``CocoDataset``.
        **kwargs: ``CocoDataset`` / ``BaseDataset`` arguments.
    """

    def __init__(self,
                 *args,
                 category_map: CategoryMap = 'coco2ytvis2021',
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        metainfo = dict(metainfo or {})
        if isinstance(category_map, str):
            if category_map not in COCO_CATEGORY_MAPS:
                raise KeyError(
                    f'Unknown category_map preset {category_map!r}; choose '
                    f'from {sorted(COCO_CATEGORY_MAPS)} or pass a dict.')
            table, classes = COCO_CATEGORY_MAPS[category_map]
            given = metainfo.setdefault('classes', classes)
            if tuple(given) != tuple(classes):
                raise ValueError(
                    f'category_map {category_map!r} maps to its own '
                    f'{len(classes)} classes; metainfo classes differ (use '
                    'a dict category_map for another vocabulary).')
            self._user_map = False
        elif isinstance(category_map, Mapping):
            if 'classes' not in metainfo:
                raise ValueError('A dict category_map needs '
                                 "metainfo=dict(classes=...) (the target "
                                 'vocabulary).')
            table = dict(category_map)
            self._user_map = True
        else:
            raise TypeError('category_map must be a preset name or a dict, '
                            f'got {type(category_map)}')
        self.category_map = table
        # The COCO palette (80 colours) does not fit the target classes.
        metainfo.setdefault('palette', None)
        super().__init__(*args, metainfo=metainfo, **kwargs)

    # ------------------------------------------------------------------
    def _target_label(self, target: Union[int, str], classes: Sequence[str],
                      key: Any) -> int:
        """0-based label of a ``category_map`` value."""
        if isinstance(target, str):
            if target not in classes:
                raise ValueError(
                    f'category_map maps {key!r} to {target!r}, which is not '
                    f'in the target classes {tuple(classes)}')
            return list(classes).index(target)
        if isinstance(target, bool) or not isinstance(target, int) \
                or not 1 <= target <= len(classes):
            raise ValueError(
                f'category_map maps {key!r} to {target!r}; an int target is '
                f'a 1-based category id in 1..{len(classes)}')
        return target - 1

    def resolve_category_map(self, categories: List[dict]) -> Dict[int, int]:
        """COCO category id -> 0-based target label for this JSON.

        Args:
            categories (list[dict]): The JSON's ``categories``.

        Returns:
            dict[int, int]: Only the mapped categories present in the JSON.
        """
        classes = self.metainfo['classes']
        by_name = {c['name']: c['id'] for c in categories}
        ids = set(by_name.values())
        cat2label, unknown = {}, []
        for key, target in self.category_map.items():
            label = self._target_label(target, classes, key)
            cat_id = by_name.get(key) if isinstance(key, str) else key
            if cat_id is None or cat_id not in ids:
                unknown.append(key)
                continue
            cat2label[int(cat_id)] = label
        if unknown and self._user_map:
            print_log(
                f'category_map keys {unknown} are not categories of '
                f"'{self.ann_file}'; they are ignored.",
                logger='current',
                level=logging.WARNING)
        return cat2label

    def load_data_list(self) -> List[dict]:
        """Load the COCO JSON, keeping only mapped categories' instances."""
        ann_file = self.ann_file
        if not exists(ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(
                f"COCO annotation file '{ann_file}' does not exist "
                f'(data_root={self.data_root!r}); expected e.g. '
                "data/coco/annotations/instances_train2017.json.")
        with get_local_path(
                ann_file, backend_args=self.backend_args) as local_path:
            try:
                self.coco = self.COCOAPI(local_path)
            except (ValueError, UnicodeDecodeError, TypeError, AttributeError,
                    AssertionError) as e:
                raise ValueError(
                    f"'{ann_file}' is not a COCO-format JSON file: {e}") from e
        categories = self.coco.dataset.get('categories')
        if not isinstance(categories, list):
            raise ValueError(f"'{ann_file}' has no 'categories' list; is it "
                             'a COCO instances file?')
        self.cat2label = self.resolve_category_map(categories)
        self.cat_ids = sorted(self.cat2label)
        if not self.cat_ids:
            raise ValueError(
                f"No category of '{ann_file}' is mapped by category_map; "
                'every annotation would be dropped.')
        self.cat_img_map = {
            cat_id: list(self.coco.cat_img_map[cat_id])
            for cat_id in self.cat_ids
        }
        data_list, ann_ids = [], []
        for img_id in self.coco.get_img_ids():
            raw_img_info = self.coco.load_imgs([img_id])[0]
            raw_img_info['img_id'] = img_id
            img_ann_ids = self.coco.get_ann_ids(img_ids=[img_id])
            ann_ids.extend(img_ann_ids)
            # parse_data_info skips categories not in self.cat_ids and
            # labels the others through self.cat2label
            data_list.append(
                self.parse_data_info(
                    dict(
                        raw_ann_info=self.coco.load_anns(img_ann_ids),
                        raw_img_info=raw_img_info)))
        if self.ANN_ID_UNIQUE and len(set(ann_ids)) != len(ann_ids):
            raise ValueError(f"Annotation ids in '{ann_file}' are not unique")
        del self.coco
        return data_list

    def filter_data(self) -> List[dict]:
        """Drop images without a usable instance after the mapping."""
        if self.test_mode or self.filter_cfg is None:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        kept = []
        for info in self.data_list:
            if filter_empty_gt and not any(ins['ignore_flag'] == 0
                                           for ins in info['instances']):
                continue
            if min(info['width'], info['height']) >= min_size:
                kept.append(info)
        if self.data_list and not kept:
            raise ValueError(
                f"None of the {len(self.data_list)} images of "
                f"'{self.ann_file}' is left after filtering (no instance of "
                f'a mapped category, or smaller than min_size={min_size}).')
        return kept
