# Copyright (c) mmookd contributors. All rights reserved.
"""Shared fixtures: a tiny ToyVIS dataset and config helpers."""
import os.path as osp

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

TINY_TOYVIS = dict(
    num_train=3, num_val=2, num_long_val=1, frames=(4, 6), long_frames=(6, 8))


@pytest.fixture(autouse=True, scope='session')
def unformatted_config_text():
    """mmengine formats every config it logs or dumps (each Runner start)
    with yapf: about 3 s a call on a 2-core CPU, minutes over the suite.
    The text yapf gets is the same Python, only not re-indented, so the
    tests' dumped configs load the same. Tools run as subprocesses keep
    mmengine's formatting."""
    import mmengine.config.config as mmengine_config
    patch = pytest.MonkeyPatch()
    patch.setattr(mmengine_config, 'FormatCode', lambda text, **kwargs:
                  (text, False))
    yield
    patch.undo()


@pytest.fixture(scope='session')
def tiny_toyvis(tmp_path_factory) -> str:
    """A few-video ToyVIS dataset (seconds to generate), shared by tests."""
    from mmookd.datasets.toyvis import generate_toyvis
    root = str(tmp_path_factory.mktemp('toyvis'))
    generate_toyvis(root, **TINY_TOYVIS)
    return root


@pytest.fixture(scope='module')
def single_thread():
    """One intra-op thread for a whole module: the CPU is shared (see
    test_idol.py). A module opts in with
    ``pytestmark = pytest.mark.usefixtures('single_thread')``."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


@pytest.fixture(scope='module')
def open_thresholds() -> dict:
    """``cfg_options`` opening the toy IDOL's thresholds (a new dict per
    module).

    Random weights score about the focal prior (0.01): with every score
    threshold open, the filtering, the tracker and the assembler have
    instances to work on.
    """
    return {
        'model.test_cfg.select_thr': 0.0,
        'model.tracker.init_score_thr': 0.0,
        'model.tracker.addnew_score_thr': 0.0,
        'model.assembler.apply_cls_thres': 0.0,
    }
