"""tools/demo.py end to end on a tiny budget: both models trained, evaluated,
the reference columns (raw pixels, untrained encoder), the prototype step
alone run on the frozen baseline encoder, plots, the stage times and
results.json written with the keys the README documents."""
import json
import pytest
import sys

from tests.conftest import JOINT_FMNIST, load_tool, run_tool

THRESHOLDS = ('0.025', '0.05', '0.1', '0.25', '0.5')
# the configs' K: the untrained column is the baseline's model
NUM_PROTOTYPES = {'baseline': 1024, 'decoupled': 256, 'untrained': 1024}


@pytest.mark.slow
def test_demo_writes_results_and_plots(fmnist_root, tmp_path):
    work_dir = tmp_path / 'demo'
    proc = run_tool([sys.executable, 'tools/demo.py', '--epochs', '1',
                     '--train-images', '128', '--bank-images', '64',
                     '--query-images', '32', '--frozen-steps', '4',
                     '--frozen-images', '48', '--work-dir', str(work_dir)])

    results = json.loads((work_dir / 'results.json').read_text())
    assert set(results) == {'baseline', 'decoupled', 'untrained',
                            'raw_pixels', 'timings_s'}
    for name in ('baseline', 'decoupled', 'untrained'):
        model = results[name]
        for eps in THRESHOLDS:
            assert 0 < model[f'unique@{eps}'] <= 100
        assert 0 <= model['knn_top1'] <= 100
        assert 1 <= model['used_prototypes'] <= model['num_prototypes']
        assert model['num_prototypes'] == NUM_PROTOTYPES[name]
        assert model['seed'] == 0
        # the data's own spacing: at most the 64 + 32 evaluated embeddings
        assert 1 <= model['embedding_leaders@0.5'] <= \
            model['embedding_leaders@0.025'] <= 96
        # every column is tools/test.py on the same 64 + 32 images
        metrics = json.loads((work_dir / name / 'metrics.json').read_text())
        assert metrics['prototypes/embedding_count'] == 96
        assert model['knn_top1'] == metrics['knn/top1']
    for name in ('baseline', 'decoupled'):
        model = results[name]
        assert model['epochs'] == 1
        assert model['iter_time_s'] > 0
        for eps in THRESHOLDS:
            assert 0 < model[f'frozen_encoder_unique@{eps}'] <= 100
        frozen = json.loads(
            (work_dir / name / 'frozen_encoder.json').read_text())
        assert frozen['unique']['steps'][-1] == 4
        assert frozen['images'] == 48  # --frozen-images reached the tool
        # both heads' prototype steps alone run at the baseline's K
        assert frozen['num_prototypes'] == NUM_PROTOTYPES['baseline']
        assert model['frozen_encoder_unique@0.5'] == \
            frozen['final']['unique@0.5']
    untrained = results['untrained']
    assert untrained['epochs'] == 0 and 'iter_time_s' not in untrained
    assert not any(k.startswith('frozen') for k in untrained)
    # raw pixels: the k-NN function on the same 64 bank / 32 query images
    demo = _demo_module()
    assert results['raw_pixels'] == demo.raw_pixel_knn(
        f'configs/{JOINT_FMNIST}', bank_images=64, query_images=32)

    times = results['timings_s']
    stages = ['train baseline', 'evaluate baseline', 'train decoupled',
              'evaluate decoupled', 'reference: raw pixels',
              'reference: untrained encoder', 'frozen encoder: baseline',
              'frozen encoder: decoupled', 'plots']
    assert list(times) == stages + ['total']
    assert all(times[s] > 0 for s in stages)
    assert sum(times[s] for s in stages) <= times['total'] + 0.5  # rounding
    assert times['train baseline'] == results['baseline']['train_time_s']
    for png in ('unique_vs_eps', 'nn_cosine_hist', 'usage', 'frozen_encoder'):
        assert (work_dir / 'plots' / f'{png}.png').stat().st_size > 1000
    # the printed table: a column per model and reference, then the times
    header = next(line for line in proc.stdout.splitlines()
                  if 'baseline (joint)' in line and 'raw pixels' in line)
    assert header.split() == ['baseline', '(joint)', 'decoupled', '(GMM)',
                              'untrained', 'raw', 'pixels']
    knn_row = next(line for line in proc.stdout.splitlines()
                   if line.startswith('knn_top1'))
    assert knn_row.split()[-1] == f'{results["raw_pixels"]["knn_top1"]:.2f}'
    assert 'frozen_encoder_unique@0.5' in proc.stdout
    total_row = next(line for line in proc.stdout.splitlines()
                     if line.startswith('total '))
    assert total_row.split() == ['total', f'{times["total"]:.1f}']


def test_raw_pixels_reproduce_the_reference_number(fmnist_root,
                                                   monkeypatch):
    """The demo's bank (first 10,000 training images) and all 10,000 test
    images, k = 20, T = 0.07: 80.14 % (the number README cites)."""
    from tests.conftest import REPO_ROOT
    monkeypatch.chdir(REPO_ROOT)  # the config's data root is relative
    demo = _demo_module()
    result = demo.raw_pixel_knn(f'configs/{JOINT_FMNIST}',
                                bank_images=10000, query_images=0)
    assert result == {'knn_top1': 80.14}


def _demo_module():
    return load_tool('tools/demo.py')


def test_long_tailed_groups_reach_json_and_table(capsys):
    """Per-group k-NN, ownership counts and the diversity of groups that own
    prototypes are summarised; a group one model lacks prints as '-'."""
    demo = _demo_module()
    base = {f'prototypes/unique@{eps}': 100.0 for eps in THRESHOLDS}
    base.update({'knn/top1': 50.0, 'prototypes/used_prototypes': 9.0,
                 'prototypes/argmax_perplexity': 2.5,
                 'prototypes/soft_perplexity': 3.5,
                 'prototypes/num_prototypes': 1024.0,
                 'knn/top1_tail': 20.0, 'prototypes/owned_tail': 0.0})
    gmm = dict(base, **{'prototypes/owned_tail': 3.0,
                        'prototypes/unique@0.5_tail': 66.7})
    results = {'baseline': demo.summarise(base, 3, [0.2, 0.1, 0.3]),
               'decoupled': demo.summarise(gmm, 3, [0.2, 0.1, 0.3])}
    assert results['baseline']['owned_tail'] == 0
    assert results['decoupled']['owned_tail'] == 3
    assert results['decoupled']['unique@0.5_tail'] == 66.7
    assert 'unique@0.5_tail' not in results['baseline']
    assert results['baseline']['argmax_perplexity'] == 2.5
    assert results['baseline']['soft_perplexity'] == 3.5
    assert results['baseline']['iter_time_s'] == 0.2  # first one skipped
    demo.print_table(results)
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith('unique@0.5_tail'))
    assert row.split()[1:] == ['-', '66.70']


def test_untrained_checkpoint_is_where_training_starts(tmp_path):
    """Initialised as the Runner does (ViT pos_embed drawn, not zeros), the
    EMA teacher a copy of the student, reproducible from the seed."""
    import torch
    demo = _demo_module()
    config = f'configs/{JOINT_FMNIST}'
    paths = [demo.save_untrained_checkpoint(config, str(tmp_path / f'{i}.pth'),
                                            seed)
             for i, seed in enumerate((0, 0, 1))]
    states = [torch.load(p, weights_only=False)['state_dict'] for p in paths]
    first = states[0]
    assert first['backbone.pos_embed'].std() > 0.01  # init_weights ran
    for key, value in first.items():
        teacher_key = 'teacher.module.' + key
        if teacher_key in first:
            assert torch.equal(first[teacher_key], value), key
    assert all(torch.equal(first[k], states[1][k]) for k in first)
    assert not torch.equal(first['backbone.pos_embed'],
                           states[2]['backbone.pos_embed'])
