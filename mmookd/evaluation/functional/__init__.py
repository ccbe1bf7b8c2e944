# Copyright (c) mmookd contributors. All rights reserved.
from .identity_survival import identity_survival
from .results_io import SUBMISSION_SUFFIX, dump_ytvis_results
from .ytvis_eval import (
    YTVIS_METRIC_NAMES,
    NumpySafeYTVISeval,
    encode_binary_masks,
    evaluate_ytvis,
    evaluate_ytvis_subsets,
    load_ytvis_gt,
    load_ytvis_results,
    to_compressed_rle,
)

__all__ = [
    'SUBMISSION_SUFFIX', 'dump_ytvis_results', 'YTVIS_METRIC_NAMES',
    'NumpySafeYTVISeval', 'encode_binary_masks', 'evaluate_ytvis',
    'evaluate_ytvis_subsets', 'load_ytvis_gt', 'load_ytvis_results',
    'to_compressed_rle', 'identity_survival'
]
