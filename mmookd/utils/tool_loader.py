# Copyright (c) mmookd contributors. All rights reserved.
"""Load a script under ``tools/`` as a module.

``tools/`` is not a package, so scripts that reuse another tool's functions
(``tools/analysis/track_strip.py`` draws with ``tools/demo/video_demo.py``)
and the tests that call a tool's ``main`` load it by its file path.
"""
import importlib.util
import os.path as osp
import types
from typing import Optional

#: the repository root: the parent of the ``mmookd`` package directory
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(path: str, name: Optional[str] = None) -> types.ModuleType:
    """Execute the Python file ``path`` and return it as a fresh module.

    Args:
        path (str): the file; a relative path is resolved against the
            repository root (e.g. ``'tools/demo/video_demo.py'``).
        name (str, optional): the module's ``__name__``. Defaults to the
            file's stem. The module is not added to ``sys.modules``.

    Returns:
        types.ModuleType: the executed module; every call executes the file
        again.

    Raises:
        FileNotFoundError: ``path`` is not a file.
    """
    full = path if osp.isabs(path) else osp.join(REPO_ROOT, path)
    if not osp.isfile(full):
        raise FileNotFoundError(f'no such tool: {full}')
    if name is None:
        name = osp.splitext(osp.basename(full))[0]
    spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
