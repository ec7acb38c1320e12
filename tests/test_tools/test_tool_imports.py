"""The tools are scripts that import the package, never each other: no
``sys.path`` edits, no loading a file by path, no import of a sibling
script (what they share lives in gmproto_mm.analysis / gmproto_mm.apis).
Tests may still load a tool by path (tests/conftest.py's load_tool)."""
import ast
import glob
import os.path as osp

from tests.conftest import REPO_ROOT

TOOL_FILES = sorted(
    osp.relpath(path, REPO_ROOT)
    for path in glob.glob(osp.join(REPO_ROOT, 'tools', '**', '*.py'),
                          recursive=True))
TOOL_NAMES = {osp.splitext(osp.basename(path))[0] for path in TOOL_FILES}
FORBIDDEN = ('sys.path', 'spec_from_file_location')


def test_the_tools_are_found():
    for path in ('tools/train.py', 'tools/demo.py',
                 'tools/analysis/seed_study.py',
                 'tools/analysis/gpu_check.py',
                 'tools/model_converters/export_backbone.py'):
        assert path in TOOL_FILES


def test_no_tool_edits_sys_path_or_loads_a_file_by_path():
    offenders = []
    for path in TOOL_FILES:
        with open(osp.join(REPO_ROOT, path)) as f:
            for number, line in enumerate(f, 1):
                if any(word in line for word in FORBIDDEN):
                    offenders.append(f'{path}:{number}: {line.strip()}')
    assert not offenders, 'move what the tool needs into the package ' \
        '(gmproto_mm.analysis or gmproto_mm.apis) and import it:\n' + \
        '\n'.join(offenders)


def test_no_tool_imports_another_tool():
    """A script's own folder is on sys.path when it runs, so ``from demo
    import ...`` would work without any sys.path edit: forbidden too."""
    offenders = []
    for path in TOOL_FILES:
        with open(osp.join(REPO_ROOT, path)) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                names = ['.'] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name == '.' or name.split('.')[0] in TOOL_NAMES:
                    offenders.append(f'{path}:{node.lineno}: imports '
                                     f'{name}')
    assert not offenders, '\n'.join(offenders)
