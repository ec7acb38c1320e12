"""mmpretrain's own entry points on our configs and checkpoints: its APIs,
and its tools taken from the installed package (they ship in it, under
.mim/tools), never copied."""
import glob
import os
import os.path as osp
import re
import sys

import mmpretrain
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.utils import digit_version
from PIL import Image

from tests.conftest import (DECOUPLED_FMNIST, FMNIST_ROOT, REPO_ROOT,
                            SMALL_TEST_OPTIONS, load_tool, run_tool,
                            save_fresh_checkpoint)

MMPRETRAIN_TOOLS = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools')
CONFIG = f'configs/{DECOUPLED_FMNIST}'  # gray, 1 channel
RGB_CONFIG = 'configs/examples/dino-gmm_vit-tiny-p8_1xb64-3e_custom-folder.py'
TINY_TRAIN = [
    'train_dataloader.batch_size=8', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'train_dataloader.dataset.indices=16',
    f'train_dataloader.dataset.data_root={FMNIST_ROOT}']


def mmpretrain_tool(path: str) -> str:
    """``path`` (e.g. ``train.py``) in the installed mmpretrain's tools."""
    tool = osp.join(MMPRETRAIN_TOOLS, path)
    if not osp.isfile(tool):
        pytest.skip(f'this mmpretrain install ships no {path} (a source '
                    'checkout keeps its tools outside the package)')
    return tool


def run_mmpretrain(args, check=True):
    """mmpretrain's tool or ``python -c`` code, importing this checkout's
    gmproto_mm (a tool's folder, not the cwd, is first on its sys.path)."""
    path = os.environ.get('PYTHONPATH')
    return run_tool([sys.executable, *args], check=check, env_extra=dict(
        PYTHONPATH=os.pathsep.join([REPO_ROOT] + ([path] if path else []))))


def test_browse_dataset_shows_our_training_set(tmp_path, fmnist_root):
    """Our runtime is written out (no mmpretrain:: base, whose every dict
    mmengine tags with _scope_, which UniversalVisualizer rejects). Mode
    'original': the other modes call matplotlib's adjust_bbox without the
    renderer that matplotlib 3.11 requires, whatever the config."""
    out = tmp_path / 'browse'
    run_mmpretrain([mmpretrain_tool('visualization/browse_dataset.py'),
                    CONFIG, '--output-dir', str(out), '--not-show',
                    '--show-number', '2', '--mode', 'original',
                    '--cfg-options', f'train_dataloader.dataset.data_root='
                    f'{fmnist_root}'])
    assert sorted(os.listdir(out)) == ['0.jpg', '1.jpg']


def test_configs_resolve_without_mmpretrain_bases():
    """No config but the one that is mmpretrain's SwAV config inherits an
    mmpretrain:: base: none needs pkg_resources (setuptools < 82, a
    deprecation warning per base) and none carries _scope_ keys; and
    mmpretrain's print_config.py prints our runtime without the warning."""
    configs = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'),
                               recursive=True))
    code = f'''
import json, sys
from mmengine.config import Config
scoped = []
for path in {[c for c in configs if '_base_' not in c and 'swav-gmm_resnet50'
             not in c]!r}:
    text = json.dumps(Config.fromfile(path, import_custom_modules=False)
                      .to_dict(), default=str)
    if '_scope_' in text:
        scoped.append(path)
assert not scoped, scoped
assert 'pkg_resources' not in sys.modules, 'a config resolved mmpretrain::'
print('checked')
'''
    assert 'checked' in run_mmpretrain(['-c', code]).stdout
    inheriting = [osp.relpath(c, REPO_ROOT) for c in configs
                  if "'mmpretrain::" in open(c).read()]
    assert inheriting == ['configs/swav/swav-gmm_resnet50_8xb32-mcrop-'
                          'coslr-200e_in1k-224px-96px.py']

    out = run_mmpretrain(['-W', 'default', mmpretrain_tool(
        'misc/print_config.py'), CONFIG])
    assert "type='UniversalVisualizer'" in out.stdout
    assert '_scope_' not in out.stdout
    assert 'pkg_resources' not in out.stderr


@pytest.mark.slow
def test_train_test_resume_and_get_model_on_our_checkpoint(tmp_path,
                                                           fmnist_root):
    """Under torch >= 2.6 (weights_only=True loading) mmpretrain's loaders
    read what its tools/train.py writes with our runtime; --resume goes on
    with the logged history."""
    work = str(tmp_path / 'work')
    train = [mmpretrain_tool('train.py'), CONFIG, '--work-dir', work,
             '--cfg-options'] + TINY_TRAIN
    run_mmpretrain(train + ['train_cfg.max_epochs=1'])  # 2 iterations
    ckpt = osp.join(work, 'epoch_1.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []

    out = run_mmpretrain(['-c', f'''
import torch
from mmpretrain import get_model
model = get_model({CONFIG!r}, pretrained={ckpt!r})
state = torch.load({ckpt!r}, weights_only=True)['state_dict']
assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
print('loaded', type(model).__name__)
'''])
    assert 'loaded DINO' in out.stdout

    out = run_mmpretrain([mmpretrain_tool('test.py'), CONFIG, ckpt,
                          '--work-dir', str(tmp_path / 'test'),
                          '--cfg-options'] + SMALL_TEST_OPTIONS)
    assert 'knn/top1' in out.stdout + out.stderr

    out = run_mmpretrain(train + ['train_cfg.max_epochs=2', '--resume'])
    assert 'resumed epoch: 1' in out.stdout + out.stderr
    assert 'is not HistoryBuffer' not in out.stdout + out.stderr
    resumed = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=True)
    loss = resumed['message_hub']['log_scalars']['train/loss']
    first = torch.load(ckpt, weights_only=True)['message_hub'][
        'log_scalars']['train/loss']
    assert len(loss['log_history']) == 4  # 2 iterations before, 2 after
    assert torch.equal(loss['log_history'][:2], first['log_history'])


def test_a_checkpoint_from_before_the_hook_converts_for_get_model(tmp_path):
    """tools/model_converters/weights_only_checkpoint.py rewrites an older
    training checkpoint (a pickled message hub) for mmpretrain's loaders."""
    from tests.test_tools.test_train_tools import LEGACY, LEGACY_OPTIONS
    safe = str(tmp_path / 'safe.pth')
    run_tool([sys.executable,
              'tools/model_converters/weights_only_checkpoint.py', LEGACY,
              safe])
    code = f'''
import pickle, torch
from mmengine.config import Config, DictAction
from mmpretrain import get_model
cfg = Config.fromfile({CONFIG!r})
cfg.merge_from_dict({{k: DictAction._parse_iterable(v) for k, v in
                     (o.split('=', 1) for o in {LEGACY_OPTIONS!r})}})
try:
    get_model(cfg, pretrained={LEGACY!r})
except pickle.UnpicklingError:
    print('the original is refused')
model = get_model(cfg, pretrained={safe!r})
state = torch.load({LEGACY!r}, weights_only=False)['state_dict']
# merge_slack came after this checkpoint: it loads with no mean checked
assert all(torch.equal(v, state[k]) if k in state else
           k.endswith('merge_slack') and bool((v == -4.0).all())
           for k, v in model.state_dict().items())
print('converted loaded')
'''
    out = run_mmpretrain(['-c', code]).stdout
    assert 'converted loaded' in out
    if digit_version(torch.__version__) >= digit_version('2.6.0'):
        assert 'the original is refused' in out


def test_feature_extractor_takes_files_and_arrays(tmp_path, fmnist_root):
    """FeatureExtractor reads test_dataloader.dataset.pipeline (KNNDataset's
    own) and loads files in colour; the gray model's features of a gray PNG,
    a colour PNG of the same image and the array are the k-NN test's."""
    from mmpretrain import FeatureExtractor, get_model
    from mmpretrain.registry import DATASETS
    ckpt = save_fresh_checkpoint(DECOUPLED_FMNIST, tmp_path / 'fresh.pth')
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIG))
    cfg.test_dataloader.dataset.query.update(data_root=fmnist_root,
                                             indices=1)
    query = DATASETS.build(cfg.test_dataloader.dataset).query
    img = query.get_data_info(0)['img']  # (28, 28) uint8
    Image.fromarray(img).save(tmp_path / 'gray.png')
    Image.fromarray(np.stack([img] * 3, axis=-1)).save(tmp_path / 'rgb.png')

    extractor = FeatureExtractor(osp.join(REPO_ROOT, CONFIG),
                                 pretrained=ckpt, device='cpu')
    feats = [extractor(str(tmp_path / 'gray.png'))[0][0],
             extractor(str(tmp_path / 'rgb.png'))[0][0],
             extractor(img)[0][0]]
    model = get_model(osp.join(REPO_ROOT, CONFIG), pretrained=ckpt)
    with torch.no_grad():
        batch = model.data_preprocessor(default_collate([query[0]]), False)
        expected = model.extract_feat(batch['inputs'])[0][0]
    assert expected.shape == (128, )
    for feat in feats:
        torch.testing.assert_close(feat, expected)


def test_get_flops_names_our_tool_for_gray_configs(capsys):
    """mmpretrain's get_flops.py feeds 3 channels: a gray config stops with
    the cause and tools/analysis/get_flops.py, which counts it; on an RGB
    config both count the same."""
    out = run_mmpretrain([mmpretrain_tool('analysis_tools/get_flops.py'),
                          CONFIG, '--shape', '32'], check=False)
    assert out.returncode != 0
    assert 'the backbone takes 1-channel images' in out.stderr
    assert 'python tools/analysis/get_flops.py CONFIG' in out.stderr

    ours = load_tool('tools/analysis/get_flops.py')
    ours.main([osp.join(REPO_ROOT, CONFIG)])
    counted = capsys.readouterr().out
    assert re.search(r'Input shape: \(1, 32, 32\)\nFlops: [1-9]', counted)

    theirs = run_mmpretrain([mmpretrain_tool('analysis_tools/get_flops.py'),
                             RGB_CONFIG, '--shape', '32']).stdout
    ours.main([osp.join(REPO_ROOT, RGB_CONFIG)])
    counted = capsys.readouterr().out
    block = theirs[theirs.index('Input shape'):theirs.index('Activation')]
    assert block.startswith('Input shape: (3, 32, 32)\nFlops: ')
    assert block in counted


def test_a_wrong_data_root_is_named_and_left_alone(tmp_path):
    from mmpretrain.datasets import build_dataset
    wrong = tmp_path / 'data' / 'fashion-mnist'
    with pytest.raises(FileNotFoundError) as err:
        build_dataset(dict(type='LocalFashionMNIST', data_root=str(wrong)))
    message = str(err.value)
    assert f"data_root '{wrong}/' lacks" in message
    assert ('python -c "from gmproto_mm.datasets import '
            'prepare_fashion_mnist; prepare_fashion_mnist(' in message)
    assert 'bash tools/setup_env.sh' in message
    assert 'train_dataloader.dataset.data_root=' in message
    assert not osp.exists(tmp_path / 'data')  # nothing created, nothing put
