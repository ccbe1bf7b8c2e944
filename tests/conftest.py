# Copyright (c) mmookd contributors. All rights reserved.
"""Shared fixtures: a tiny ToyVIS dataset and config helpers."""
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

TINY_TOYVIS = dict(
    num_train=3, num_val=2, num_long_val=1, frames=(4, 6), long_frames=(6, 8))


@pytest.fixture(scope='session')
def tiny_toyvis(tmp_path_factory) -> str:
    """A few-video ToyVIS dataset (seconds to generate), shared by tests."""
    from mmookd.datasets.toyvis import generate_toyvis
    root = str(tmp_path_factory.mktemp('toyvis'))
    generate_toyvis(root, **TINY_TOYVIS)
    return root
