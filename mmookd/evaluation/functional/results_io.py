# Copyright (c) mmookd contributors. All rights reserved.
"""Writing YouTube-VIS / OVIS results without ever overwriting a file.

A results JSON can be the only copy of hours of inference on a test split,
so an existing file is never replaced: a free name is chosen instead (the
prefix gets ``_1``, ``_2``, ...), files are created with exclusive mode so
that even a concurrent writer cannot be clobbered, and the final paths are
returned (and logged) so the caller knows where the results went.
"""
import json
import logging
import os
import os.path as osp
import zipfile
from itertools import count
from typing import Any, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

__all__ = ['SUBMISSION_SUFFIX', 'dump_ytvis_results']

#: Suffix of the zip file uploaded to the YouTube-VIS / OVIS servers.
SUBMISSION_SUFFIX = '.submission_file.zip'


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays and bytes JSON serialisable."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, bytes):
        return obj.decode()
    raise TypeError(f'Object of type {type(obj)} is not JSON serializable')


def dump_ytvis_results(results: Sequence[dict],
                       outfile_prefix: str,
                       make_zip: bool = True,
                       logger: Optional[Any] = 'current',
                       overwrite: bool = False) -> Tuple[str, Optional[str]]:
    """Write ``{prefix}.json`` and ``{prefix}.submission_file.zip``.

    The zip holds the JSON as ``results.json`` at its root, the layout the
    YouTube-VIS and OVIS CodaLab servers expect.

    Args:
        results (Sequence[dict]): Results in the official format.
        outfile_prefix (str): Path prefix, e.g. ``work_dirs/x/results``.
        make_zip (bool): Also write the submission zip. Defaults to True.
        logger (Logger | str, optional): Where to log the final paths.
        overwrite (bool): Replace existing files of ``outfile_prefix``
            (``tools/test.py --force``) instead of choosing a free name.
            Defaults to False.

    Returns:
        tuple[str, str | None]: The JSON path and the zip path (None when
        ``make_zip`` is False). They differ from ``outfile_prefix`` when
        files with that prefix exist already.
    """
    out_dir = osp.dirname(osp.abspath(outfile_prefix))
    os.makedirs(out_dir, exist_ok=True)
    data = json.dumps(list(results), default=_json_default)
    for i in count():
        prefix = outfile_prefix if i == 0 else f'{outfile_prefix}_{i}'
        json_path = f'{prefix}.json'
        zip_path = f'{prefix}{SUBMISSION_SUFFIX}' if make_zip else None
        if not overwrite and (osp.exists(json_path) or
                              (zip_path and osp.exists(zip_path))):
            continue
        mode = 'w' if overwrite else 'x'
        try:
            with open(json_path, mode) as f:
                f.write(data)
        except FileExistsError:  # created concurrently
            continue
        if zip_path is not None:
            try:
                with zipfile.ZipFile(zip_path, mode,
                                     zipfile.ZIP_DEFLATED) as zf:
                    zf.write(json_path, arcname='results.json')
            except FileExistsError:
                os.remove(json_path)  # ours, just written: keep them paired
                continue
        break
    if prefix != outfile_prefix:
        print_log(
            f'{outfile_prefix}.json or its submission zip exists already, '
            f'not overwriting it: writing to {prefix} instead.',
            logger=logger,
            level=logging.WARNING)
    print_log(f'Results written to {json_path}', logger=logger)
    if zip_path is not None:
        print_log(
            f'Submission file (results.json zipped) written to {zip_path}; '
            'upload it to the evaluation server.',
            logger=logger)
    return json_path, zip_path
