"""tools/analysis/rehearse_flagship.sh: the flagship config launched by
dist_train.sh on CPU ranks, resumed, and tested by dist_test.sh -- here on
a small model of the same config (the full one: docs/gpu_check.md)."""
import json

import pytest
import torch

from gmproto_mm.analysis.rehearsal import (derived_config, states_agree,
                                           tensor_digest)
from tests.conftest import run_tool


@pytest.mark.slow
def test_rehearsal_of_the_flagship_config_on_a_small_model(tmp_path):
    """2 gloo ranks, the flagship config with a DeiT-tiny backbone and
    K = 1,024: the EM state is finite and bit-identical on both ranks,
    the resumed run ends where the uninterrupted one does, the test runs,
    and the report holds each rank's peak memory and iteration times."""
    proc = run_tool(['bash', 'tools/analysis/rehearse_flagship.sh',
                     '--ranks', '2', '--iters', '1', '--images-per-rank', '1',
                     '--work-dir', str(tmp_path), '--cfg-options',
                     'model.backbone.arch=deit-tiny',
                     'model.neck.in_channels=192',
                     'model.head.num_prototypes=1024'], timeout=900)
    assert '[rehearsal] PASSED' in proc.stdout
    with open(tmp_path / 'rehearsal.json') as f:
        report = json.load(f)
    assert report['passed'] and all(report['checks'].values())
    assert report['config'] == 'configs/gm_dino_vitb_in1k.py'
    assert (report['backend'], report['ranks']) == ('gloo', 2)
    assert report['em_updates'] == {'head.em_bank': 2}
    assert len(report['peak_memory_mb']) == 2
    assert all(m > 0 for m in report['peak_memory_mb'])
    assert [len(t) for t in report['iter_times_s']] == [2, 2]
    assert 'tools/dist_train.sh' in report['commands']['resume']
    assert report['test_metrics']['prototypes/num_prototypes'] == 1024


def test_derived_config_changes_only_data_and_records(tmp_path):
    from mmengine.config import Config
    from tests.conftest import REPO_ROOT
    flagship = f'{REPO_ROOT}/configs/gm_dino_vitb_in1k.py'
    path = tmp_path / 'derived.py'
    path.write_text(derived_config(flagship, str(tmp_path), 2))
    derived, base = Config.fromfile(str(path)), Config.fromfile(flagship)
    assert derived.model.head.gmm.pop('reseed_start') == 1
    base.model.head.gmm.pop('reseed_start')
    assert derived.model == base.model
    assert derived.train_dataloader.dataset.type == 'CustomDataset'
    assert derived.train_dataloader.dataset.pipeline == \
        base.train_dataloader.dataset.pipeline
    assert derived.custom_hooks[:-1] == base.custom_hooks
    assert derived.custom_hooks[-1].type == 'RehearsalRecordHook'
    assert derived.optim_wrapper == base.optim_wrapper
    assert derived.param_scheduler == base.param_scheduler


def test_state_records_compare_bit_for_bit():
    x = torch.tensor([1.0, 2.0])
    y = x.clone()
    y[1] = torch.nextafter(y[1], torch.tensor(3.0))  # one ulp apart
    assert tensor_digest(x) == tensor_digest(x.clone())
    assert tensor_digest(x) != tensor_digest(y)
    assert tensor_digest(x) != tensor_digest(x.double())
    assert tensor_digest(torch.tensor(3)) != tensor_digest(torch.tensor([3]))
    same = dict(banks=dict(b=dict(digests=dict(mu=tensor_digest(x)))))
    other = dict(banks=dict(b=dict(digests=dict(mu=tensor_digest(y)))))
    assert states_agree([same, same])
    assert not states_agree([same, other])
