# Copyright (c) mmookd contributors. All rights reserved.
"""Every reference in code, configs, tests and docs points inside the
repository (issue #16).

Design notes that lived next to the project but not in it (a spec of
IDOL / VITA, paper transcripts, notes on companion losses and on users)
must not be cited: whoever picks the project up cannot follow them. The
papers are cited by title and section; the numbers by
``docs/hyperparameters.md §N``. Checked here:

* no file names or cites an outside document (names below), nor an old
  dotted spec section (``§1.6``; this repository's sections are integers);
* a file that cites bare sections (``§N``) names the page they belong to,
  and every section cited next to ``docs/hyperparameters.md`` exists;
* every ``docs/*.md`` mentioned anywhere exists.
"""
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = [
    'mmookd', 'tools', 'configs', 'tests', 'docs', 'scripts', 'README.md',
    'Makefile', 'setup.py', 'setup.cfg'
]
SUFFIXES = {
    '.py', '.md', '.sh', '.cfg', '.toml', '.txt', '.yml', '.yaml', '.rst', ''
}
THIS_FILE = Path(__file__).resolve()

#: (label, pattern) of references to documents outside the repository.
OUTSIDE = [
    ('IDOL / VITA spec', re.compile(r'IDOL_VITA_SPEC')),
    ('the spec',
     re.compile(r'\bspec(?:\.md)? *(?:§|section *)?\d', re.IGNORECASE)),
    ('old dotted spec section', re.compile(r'§ ?\d+\.\d')),
    ('papers/ folder', re.compile(r'papers/')),
    ('shared/ folder', re.compile(r'shared/')),
    ('design note', re.compile(r'\bDESIGN\.md')),
    ('companion-loss note', re.compile(r'SEED_KD_LOSSES|\bSEED\b')),
    ('user-needs note', re.compile(r'USER_NEEDS')),
    ('mmdet VIS infra note', re.compile(r'MMDET_VIS_INFRA')),
    ('paper summary', re.compile(r'ookd_summary')),
]
DOC_PATH = re.compile(r'docs/[\w./-]+?\.md')
HP_PAGE = 'docs/hyperparameters.md'
HP_CITE = re.compile(r'docs/hyperparameters\.md((?:,? ?§\d+(?:-\d+)?)+)')
BARE_SECTION = re.compile(r'§ ?\d')


def scanned_files():
    for entry in SCANNED:
        path = ROOT / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = [
                    d for d in dirnames
                    if d != '__pycache__' and not d.startswith('.')
                ]
                for name in sorted(filenames):
                    file = Path(dirpath) / name
                    if file.suffix in SUFFIXES and file.resolve() != THIS_FILE:
                        yield file


def read(path: Path) -> str:
    try:
        return path.read_text(encoding='utf-8')
    except UnicodeDecodeError:
        return ''


@pytest.fixture(scope='module')
def texts():
    return {p.relative_to(ROOT).as_posix(): read(p) for p in scanned_files()}


def hp_sections():
    page = (ROOT / HP_PAGE).read_text(encoding='utf-8')
    return {int(n) for n in re.findall(r'^## §(\d+) ', page, re.M)}


def test_scanned_tree_is_not_empty(texts):
    assert len(texts) > 100
    assert 'mmookd/models/vis/ookd.py' in texts
    assert HP_PAGE in texts


def test_no_reference_to_a_file_outside_the_repository(texts):
    hits = []
    for rel, text in texts.items():
        for lineno, line in enumerate(text.splitlines(), 1):
            for label, pattern in OUTSIDE:
                if pattern.search(line):
                    hits.append(f'{rel}:{lineno}: {label}: {line.strip()}')
    assert not hits, ('references to documents outside the repository '
                      '(cite docs/*.md or the paper by title and '
                      'section):\n' + '\n'.join(hits))


def test_bare_sections_name_their_page(texts):
    missing = [
        rel for rel, text in texts.items()
        if BARE_SECTION.search(text) and HP_PAGE not in text and rel != HP_PAGE
    ]
    assert not missing, ('files citing sections (§N) without naming '
                         f'{HP_PAGE}: {missing}')


def test_cited_sections_exist(texts):
    sections = hp_sections()
    assert sections == set(range(1, max(sections) + 1))
    bad = []
    for rel, text in texts.items():
        for match in HP_CITE.finditer(text.replace('\n', ' ')):
            for first, last in re.findall(r'§(\d+)(?:-(\d+))?',
                                          match.group(1)):
                for n in range(int(first), int(last or first) + 1):
                    if n not in sections:
                        bad.append(f'{rel}: §{n}')
    assert not bad, f'sections missing from {HP_PAGE}: {bad}'


def test_every_docs_page_mentioned_exists(texts):
    missing = sorted({
        f'{rel}: {path}'
        for rel, text in texts.items()
        for path in DOC_PATH.findall(text) if not (ROOT / path).is_file()
    })
    assert not missing, f'docs pages that do not exist: {missing}'


def test_readme_links_the_documentation():
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    for page in ('docs/architecture.md', HP_PAGE,
                 'docs/changes_from_papers.md'):
        assert page in readme, page
