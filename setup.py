# Copyright (c) mmookd contributors. All rights reserved.
"""Install mmookd. The OpenMMLab stack itself (mmcv built from source with
its ops) is installed by ``scripts/install.sh``; here we only declare the
ranges we work with, so pip never replaces a user's CUDA torch or mmcv."""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope: dict = {}
    with open(osp.join('mmookd', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


setup(
    name='mmookd',
    version=get_version(),
    description='Offline-to-Online Knowledge Distillation for Video Instance '
    'Segmentation (OOKD) as an OpenMMLab plugin',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10.7,<1.0',
        'mmcv>=2.1.0,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'numpy',
        'pycocotools',
        'scipy',
        'opencv-python-headless',
        'Pillow',
    ],
    extras_require={
        'tests': ['pytest', 'ruff', 'yapf', 'psutil'],
        # YTVISMetric(track_metrics=...). scripts/install.sh installs
        # trackeval with --no-deps instead: its metadata pins opencv-python
        # (beside our headless build) and recent numpy / scipy / matplotlib.
        'track': ['trackeval==1.3.0', 'tabulate>=0.9.0'],
    },
    zip_safe=False,
)
