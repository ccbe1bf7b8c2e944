# Copyright (c) mmookd contributors. All rights reserved.
from .identity_survival import identity_survival
from .instance_similarity import (
    bank_retrieval,
    instance_embeddings,
    same_instance_similarities,
)
from .results_io import SUBMISSION_SUFFIX, dump_ytvis_results
from .temporal_consistency import pair_track_ious, warp_masks_nearest
from .trackeval_vis import (
    TRACK_METRICS,
    evaluate_trackeval,
    evaluate_trackeval_subsets,
)
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
    'to_compressed_rle', 'identity_survival', 'pair_track_ious',
    'warp_masks_nearest', 'instance_embeddings', 'same_instance_similarities',
    'bank_retrieval', 'TRACK_METRICS', 'evaluate_trackeval',
    'evaluate_trackeval_subsets'
]
