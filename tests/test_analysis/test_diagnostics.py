"""TrainingDiagnosticsHook: what it logs, and that it leaves the training
bit for bit as it is."""
import pytest
import torch
from mmengine.runner import Runner

from gmproto_mm.analysis.diagnostics import (TrainingDiagnosticsHook,
                                             training_targets)
from tests.conftest import DECOUPLED_FMNIST, FMNIST_ROOT, JOINT_FMNIST, \
    small_cfg


def trained(name, tmp_path, diagnostics: bool):
    cfg = small_cfg(name, str(tmp_path), num_images=24, batch_size=8)
    cfg.randomness = dict(seed=0)
    if '-gmm' in name:
        cfg.model.head.gmm.init_samples = 1  # EM from the first step
    knn = cfg.test_dataloader.dataset
    for split in ('bank', 'query'):
        knn[split].data_root = FMNIST_ROOT
    if diagnostics:
        cfg.custom_hooks = list(cfg.custom_hooks) + [dict(
            type='TrainingDiagnosticsHook', interval=1, knn_interval=2,
            probe_images=16, bank_images=32)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('name', [JOINT_FMNIST, DECOUPLED_FMNIST])
def test_diagnostics_are_logged_and_change_no_training(name, tmp_path,
                                                       fmnist_root):
    """3 iterations with the hook measuring at each (k-NN at the 2nd and
    the last): every measure is logged in range, and the model and the EM
    state equal a run without the hook, bit for bit (it measures in eval
    mode under no_grad and restores the random generators)."""
    plain = trained(name, tmp_path / 'plain', False)
    measured = trained(name, tmp_path / 'measured', True)
    hub = measured.message_hub
    series = {key[len('train/diag_'):]: hub.get_scalar(key).data[0]
              for key in hub.log_scalars if key.startswith('train/diag_')}
    assert set(series) == {'target_entropy', 'target_top1', 'agreement',
                           'cross_entropy', 'used', 'perplexity', 'churn',
                           'alignment', 'uniformity', 'knn_top1'}
    assert len(series['target_entropy']) == 3
    assert len(series['churn']) == 2 and len(series['knn_top1']) == 2
    assert all(0 <= v <= 1 for k in ('agreement', 'churn', 'target_top1')
               for v in series[k])
    assert all(0 <= v <= 4 for v in series['alignment'])
    assert all(v <= 0 for v in series['uniformity'])
    assert all(0 <= v <= 100 for v in series['knn_top1'])
    assert all(1 <= v <= 16 for v in series['used'])
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, measured.model.state_dict()[key]), key


def test_targets_are_what_the_loss_trains_on(tmp_path, fmnist_root):
    """The decoupled head's posterior targets, the joint head's centred
    softmax at the current teacher temperature."""
    from tests.test_models.test_dino import tiny_dino
    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('iter', 0)
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(6, 16), dim=1)
    joint = tiny_dino(num_prototypes=8)
    loss = joint.head.loss_module
    expected = torch.softmax((joint.head.logits(z) - loss.center) /
                             loss.current_teacher_temp(), dim=1)
    torch.testing.assert_close(training_targets(joint.head, z), expected)
    decoupled = tiny_dino(head=dict(
        type='DecoupledGMMHead', in_channels=16, num_prototypes=8,
        teacher_targets='responsibilities', gmm=dict(init='uniform')))
    decoupled.head.gmm.update(z)
    torch.testing.assert_close(training_targets(decoupled.head, z),
                               decoupled.head.gmm.responsibilities(z))


def test_bad_arguments():
    with pytest.raises(ValueError, match='interval'):
        TrainingDiagnosticsHook(interval=0)
