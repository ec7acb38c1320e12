"""Importing gmproto_mm leaves mmpretrain and mmengine as they were; the
version fixes are applied where asked for (gmproto_mm.compat)."""
import subprocess
import sys

from tests.conftest import REPO_ROOT


def run_python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (nothing imported before it)."""
    return subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_import_replaces_no_transform_and_no_checkpoint_loader():
    proc = run_python('''
import gmproto_mm
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
from mmpretrain.datasets.transforms import ColorJitter
from mmpretrain.registry import TRANSFORMS
got = TRANSFORMS.get('ColorJitter')
assert got is ColorJitter, f'ColorJitter is {got.__module__}.{got.__name__}'
got = CheckpointLoader._schemes['']
assert got is load_from_local, f'the loader is {got.__module__}.{got.__name__}'
# the fixed transform is there under its own name
from gmproto_mm.datasets.transforms import NumpySafeColorJitter
assert TRANSFORMS.get('NumpySafeColorJitter') is NumpySafeColorJitter
''')
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_full_checkpoint_loader_reads_a_message_hub_when_asked_for(tmp_path):
    """A checkpoint holding what mmengine's Runner stores (a HistoryBuffer):
    under torch >= 2.6 mmengine's own loader refuses it, ours reads it, and
    names the file of a truncated one."""
    proc = run_python(f'''
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version
import gmproto_mm
path = {str(tmp_path / 'ckpt.pth')!r}
history = HistoryBuffer()
history.update(1.0)
history.update(2.0)
torch.save(dict(message_hub=history), path)
if digit_version(torch.__version__) >= digit_version('2.6.0'):
    try:
        CheckpointLoader.load_checkpoint(path)
    except Exception:
        pass
    else:
        raise AssertionError("mmengine's loader read it: nothing to fix")
gmproto_mm.compat.use_full_checkpoint_loader()
assert CheckpointLoader.load_checkpoint(path)['message_hub'].mean() == 1.5
with open(path, 'rb') as f:
    data = f.read()
with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])
try:
    CheckpointLoader.load_checkpoint(path)
except ValueError as err:
    assert f"checkpoint {{path!r}} cannot be read" in str(err), err
else:
    raise AssertionError('a truncated checkpoint loaded')
''')
    assert proc.returncode == 0, proc.stderr[-3000:]
