"""tools/analysis/gpu_check.py --tiny: the GPU check's code path on the CPU
(tiny configs, a 2-process gloo run in place of NCCL), asserted on its
JSON, so the prepared GPU check cannot rot."""
import json
import sys

import pytest
import torch

from gmproto_mm.testing import RandomMultiCropDataset, crop_sizes
from tests.conftest import run_tool

# every test reads one report: the GPU check's CPU path, ~30 s
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('gpu_check')
    out = tmp / 'gpu_check.json'
    proc = run_tool([sys.executable, 'tools/analysis/gpu_check.py', '--tiny',
                     '--work-dir', str(tmp / 'work'), '--out', str(out)],
                    timeout=300)
    assert '[gpu_check] PASSED' in proc.stdout
    with open(out) as f:
        return json.load(f)


def test_report_has_every_number_target_and_the_environment(report):
    assert {'command', 'mode', 'device', 'settings', 'runs',
            'iter_ratio_decoupled_over_joint', 'em', 'gmm_state', 'resume',
            'distributed', 'stages_s', 'elapsed_s', 'target_values',
            'targets', 'passed'} <= set(report)
    assert report['mode'] == 'tiny' and '--tiny' in report['command']
    assert report['device']['torch'] == torch.__version__
    assert set(report['stages_s']) == {'joint', 'decoupled', 'resume',
                                       'ibot', 'em', 'distributed'}
    assert report['errors'] == {}
    assert report['target_values'] == dict(
        iter_ratio_max=1.03, em_ratio_max=4.5, em_ratio_options_max=5.0,
        extra_memory_max_gb=0.5, elapsed_max_s=300.0)
    assert report['passed'] is True


def test_timings_and_ratios_are_positive(report):
    runs = report['runs']
    for name, iters in (('joint', 4), ('decoupled', 4), ('ibot', 2)):
        assert runs[name]['timed_iters'] == iters
        assert runs[name]['median_iter_s'] > 0
    # the decoupled run has one more (untimed) iteration, after its checkpoint
    assert len(runs['decoupled']['iter_times_s']) == 2 + 4 + 1
    assert report['iter_ratio_decoupled_over_joint'] > 0
    for n in ('this_run', 'recipe', 'this_run_options', 'recipe_options'):
        em = report['em'][n]
        assert em['ratio'] > 0 and em['update_s'] > 0 and em['matmul_s'] > 0
        assert (em['num_components'], em['dim']) == (256, 128)  # the config
    assert report['em']['this_run']['batch'] == 8 * 2  # 2 global views
    # the paper's method initialises after pooling K rows; the options run
    # the config's own EM options, re-seeding from the first update
    assert report['em']['options']['maintenance']['reseed_rate'] == 1 / 32
    # (at K = 256 the idle components can all be re-seeded within the
    # first K rows, timed apart)
    recipe = report['em']['recipe_options']
    assert recipe['reseeded'] + recipe.get('first_rows_reseeded', 0) > 0
    first = report['em']['first_step_after_pooling']
    assert first['pooled_rows'] == 256 and first['seconds'] > 0


def test_cpu_memory_is_null_with_a_reason_and_targets_not_counted(report):
    if report['device']['type'] == 'cuda':
        pytest.skip('CUDA machine: memory is measured')
    for run in report['runs'].values():
        assert run['peak_memory_bytes'] is None and run['peak_memory_note']
        assert run['optim_wrapper'] == 'OptimWrapper'  # no AMP on the CPU
    targets = report['targets']
    assert targets['extra_memory_gb']['passed'] is None
    for name in ('iter_ratio', 'em_ratio', 'em_ratio_options',
                 'extra_memory_gb', 'elapsed_s'):
        assert targets[name]['counts'] is False


def test_gmm_state_is_fp32_finite_unit_norm_after_training(report):
    state = report['gmm_state']
    assert set(state['ibot']) == {'head.em_bank', 'patch_head.em_bank'}
    for banks in state.values():
        for check in banks.values():
            assert check['fp32'] and check['finite'] and check['unit_norm']
            assert check['initialized'] and check['num_updates'] >= 2
    assert state['decoupled']['head.em_bank']['num_updates'] == 7
    for name in ('gmm_fp32', 'gmm_finite', 'gmm_unit_norm'):
        assert report['targets'][name] == dict(value=None, passed=True,
                                               counts=True)


def test_resume_reproduces_the_next_em_step_bit_for_bit(report):
    resume = report['resume']
    assert resume['checkpoint_iter'] == 6  # warmup 2 + iters 4
    assert resume['checkpoint'].endswith('iter_6.pth')
    keys = {f'head.em_bank.gmm.{k}' for k in
            ('mu', 'var', 'pi', 'acc_count', 'acc_sum', 'acc_sq_sum',
             'num_updates', 'initialized', 'merge_slack')}
    assert set(resume['compared_keys']) == keys
    # the step compared is a real EM step: exactly one update, which moved
    # every statistic away from the checkpoint's ...
    assert resume['em_updates_in_next_step'] == {
        'head.em_bank.gmm.num_updates': 1}
    assert keys - {'head.em_bank.gmm.initialized'} == set(
        resume['changed_by_next_step'])
    # ... and the resumed run's step equals the uninterrupted run's
    assert resume['mismatches'] == [] and resume['bit_identical'] is True


def test_two_processes_keep_bit_identical_banks(report):
    dist = report['distributed']
    assert dist['ran'] is True and dist['world_size'] == 2
    assert dist['backend'] == ('nccl' if report['device']['type'] == 'cuda'
                               else 'gloo')
    assert dist['em_updates'] == {'head.em_bank.gmm.num_updates': 4}
    assert dist['mismatches'] == [] and dist['check_sync'] == [True, True]
    assert report['targets']['distributed_banks_identical']['passed'] is True


def test_random_multi_crop_dataset_follows_the_config_pipeline():
    pipeline = [dict(type='MultiView', num_views=[1, 1, 3], transforms=[
        [dict(type='RandomResizedCrop', scale=224)],
        [dict(type='RandomResizedCrop', scale=(224, 224))],
        [dict(type='RandomResizedCrop', scale=96), dict(type='RandomFlip')]
    ]), dict(type='PackInputs')]
    sizes = crop_sizes(pipeline)
    assert sizes == [224, 224, 96, 96, 96]
    data = RandomMultiCropDataset(sizes[:1] + sizes[-1:], channels=1,
                                  length=3)
    item = data[2]
    assert [tuple(v.shape) for v in item['inputs']] == [(1, 224, 224),
                                                        (1, 96, 96)]
    assert item['inputs'][0].dtype == torch.uint8
    assert torch.equal(item['inputs'][1], data[2]['inputs'][1])  # per index
    assert not torch.equal(item['inputs'][1], data[1]['inputs'][1])
    with pytest.raises(ValueError, match='MultiView'):
        crop_sizes([dict(type='PackInputs')])
    with pytest.raises(ValueError, match='RandomResizedCrop'):
        crop_sizes([dict(type='MultiView', num_views=2,
                         transforms=[[dict(type='RandomFlip')]])])


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA machine')
def test_full_check_without_cuda_says_to_use_tiny():
    proc = run_tool([sys.executable, 'tools/analysis/gpu_check.py'],
                    check=False)
    assert proc.returncode == 2 and 'no CUDA device' in proc.stderr \
        and '--tiny' in proc.stderr
