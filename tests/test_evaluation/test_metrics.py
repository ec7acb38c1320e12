"""KNNDataset, KNNAccuracy, PrototypeDiversityMetric, PrototypeMonitorHook
and tools/test.py for both heads."""
import json
import sys

import pytest
import torch
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS, METRICS

from gmproto_mm.datasets import KNNDataset
from gmproto_mm.engine.hooks import PrototypeMonitorHook, find_prototype_banks
from gmproto_mm.evaluation.functional import prototype_diversity
from gmproto_mm.evaluation.metrics import prototype_classes
from tests.conftest import (DECOUPLED_FMNIST, JOINT_FMNIST, SMALL_TEST_OPTIONS,
                            free_port, run_tool, save_fresh_checkpoint,
                            small_cfg)


def sample(feat, label, split, probs=None, prototypes=None):
    out = dict(backbone_feat=torch.as_tensor(feat, dtype=torch.float32),
               gt_label=torch.tensor([label]), knn_split=split)
    if probs is not None:
        out.update(prototype_probs=torch.as_tensor(probs),
                   prototypes=prototypes)
    return out


def test_knn_accuracy_on_separable_points():
    metric = METRICS.build(dict(type='KNNAccuracy', k=2, topk=(1, 2)))
    metric.dataset_meta = dict(classes=['a', 'b', 'c'],
                               class_groups=['head', 'head', 'tail'])
    bank = [sample([1, 0], 0, 'bank'), sample([0.9, 0.1], 0, 'bank'),
            sample([0, 1], 1, 'bank'), sample([0.1, 0.9], 1, 'bank'),
            sample([-1, 0], 2, 'bank'), sample([-0.9, -0.1], 2, 'bank')]
    # last query is class 2 but lies with class 1: one miss out of four
    query = [sample([1, 0.05], 0, 'query'), sample([0.05, 1], 1, 'query'),
             sample([-1, 0.05], 2, 'query'), sample([0.02, 1], 2, 'query')]
    metric.process(None, bank[:3])
    metric.process(None, bank[3:] + query)
    result = metric.evaluate(size=10)
    assert result['knn/top1'] == pytest.approx(75.0)
    assert result['knn/top1_head'] == pytest.approx(100.0)
    assert result['knn/top1_tail'] == pytest.approx(50.0)
    assert result['knn/top2'] >= result['knn/top1']


@pytest.mark.parametrize('k, temperature', [(1, 0.07), (20, 0.07),
                                             (20, 5.0), (40, 0.5)])
def test_knn_accuracy_uses_k_and_temperature(k, temperature):
    """The metric's top-1 equals an independent brute-force weighted k-NN
    at each (k, T), on data where k and T change the answer (a metric that
    ignored either would match at most one of these cases)."""
    from tests.test_evaluation.test_functional import brute_force_knn
    gen = torch.Generator().manual_seed(0)
    bank = torch.randn(120, 5, generator=gen)
    labels = torch.randint(0, 4, (120, ), generator=gen)
    query = torch.randn(60, 5, generator=gen)
    query_labels = torch.randint(0, 4, (60, ), generator=gen)

    def reference(k_, t_):
        scores = brute_force_knn(query, bank, labels, 4, k_, t_)
        return 100.0 * float((scores.argmax(1) == query_labels).double()
                             .mean())

    answers = {reference(*case)
               for case in ((1, 0.07), (20, 0.07), (20, 5.0), (40, 0.5))}
    assert len(answers) >= 3  # the cases really differ
    metric = METRICS.build(dict(type='KNNAccuracy', k=k,
                                temperature=temperature, topk=(1, )))
    metric.dataset_meta = dict(classes=['a', 'b', 'c', 'd'])
    metric.process(None, [sample(f, int(y), 'bank')
                          for f, y in zip(bank, labels)])
    metric.process(None, [sample(f, int(y), 'query')
                          for f, y in zip(query, query_labels)])
    result = metric.evaluate(size=180)
    assert result['knn/top1'] == pytest.approx(reference(k, temperature))


def test_knn_accuracy_needs_both_splits():
    metric = METRICS.build(dict(type='KNNAccuracy'))
    metric.process(None, [sample([1, 0], 0, 'query')])
    with pytest.raises(ValueError, match='bank'):
        metric.evaluate(size=1)


def test_prototype_diversity_metric_planted_duplicates(tmp_path):
    protos = torch.eye(4)
    protos = torch.cat([protos, protos[:2] + 1e-4])  # 2 duplicates: 6 rows
    usage_file = tmp_path / 'usage' / 'counts.json'
    metric = METRICS.build(dict(type='PrototypeDiversityMetric',
                                thresholds=(0.01, 2.5),
                                usage_file=str(usage_file)))
    metric.dataset_meta = dict(classes=['x', 'y'],
                               class_groups=['head', 'tail'])
    probs = torch.zeros(4, 6)
    probs[[0, 1, 2, 3], [0, 0, 1, 2]] = 1.
    samples = [sample([0.], lbl, 'query', probs[i], protos)
               for i, lbl in enumerate([0, 0, 1, 1])]
    metric.process(None, samples[:2])
    metric.process(None, samples[2:])
    result = metric.evaluate(size=4)
    assert result['prototypes/unique@0.01'] == pytest.approx(100 * 4 / 6)
    assert result['prototypes/components@0.01'] == 4
    assert result['prototypes/unique@2.5'] == pytest.approx(100 / 6)
    assert result['prototypes/used_prototypes'] == 3
    assert result['prototypes/num_prototypes'] == 6
    # prototype 0 is owned by class 0 (head); 1 and 2 by class 1 (tail)
    assert result['prototypes/owned_head'] == 1
    assert result['prototypes/owned_tail'] == 2
    assert result['prototypes/unique@0.01_tail'] == pytest.approx(100.)
    # argmax of the four samples: prototypes 0, 0, 1, 2
    assert json.loads(usage_file.read_text()) == dict(
        counts=[2, 1, 1, 0, 0, 0])


def test_per_group_diversity_with_duplicates_owned_by_the_tail():
    """Classes 0, 1 are head, 2 is tail. The tail owns prototypes 4..7,
    of which 6 and 7 duplicate 4 and 5; the head owns 0..3, all unique
    (3 also gets one tail sample: the majority owns it). Prototype 8
    duplicates 0 but is never an argmax: it belongs to no group."""
    from gmproto_mm.evaluation.functional import prototype_diversity
    eye = torch.eye(8)
    protos = torch.cat([eye[:6], eye[4:6] + 1e-4, eye[:1] + 1e-4])  # (9, 8)
    argmax = [0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 7]
    labels = [0, 1, 0, 1, 0, 2, 2, 2, 2, 2, 2]
    probs = torch.nn.functional.one_hot(torch.tensor(argmax), 9).float()
    samples = [sample([0.], lbl, 'query', probs[i], protos)
               for i, lbl in enumerate(labels)]
    metric = METRICS.build(dict(type='PrototypeDiversityMetric',
                                thresholds=(0.01, 2.5)))
    metric.dataset_meta = dict(classes=['a', 'b', 'c'],
                               class_groups=['head', 'head', 'tail'])
    metric.process(None, samples[:5])
    metric.process(None, samples[5:])
    result = metric.evaluate(size=len(samples))
    assert result['prototypes/owned_head'] == 4
    assert result['prototypes/owned_tail'] == 4
    assert result['prototypes/unique@0.01'] == pytest.approx(100 * 6 / 9)
    assert result['prototypes/unique@0.01_head'] == pytest.approx(100.)
    assert result['prototypes/unique@0.01_tail'] == pytest.approx(50.)
    assert result['prototypes/unique@2.5_head'] == pytest.approx(25.)
    assert result['prototypes/unique@2.5_tail'] == pytest.approx(25.)
    for group, rows in (('head', [0, 1, 2, 3]), ('tail', [4, 5, 6, 7])):
        for key, value in prototype_diversity(protos[rows],
                                              (0.01, 2.5)).items():
            if key.startswith('unique'):
                assert result[f'prototypes/{key}_{group}'] == \
                    pytest.approx(value), (group, key)


def test_prototype_diversity_drops_the_samplers_padding():
    """mmengine cuts the collected results to the dataset size; a padded
    repeat (always a process's last sample) must leave no trace: the
    metric over 4 samples + a repeat of sample 0 equals the one over 4."""
    protos = torch.eye(3, 4)
    probs = torch.tensor([[.8, .1, .1], [.2, .7, .1], [.3, .3, .4],
                          [.1, .8, .1]])
    samples = [dict(sample([0.], i % 2, 'query', probs[i], protos),
                    embedding=protos[i % 3], sample_idx=i) for i in range(4)]

    def evaluate(batches, size):
        metric = METRICS.build(dict(type='PrototypeDiversityMetric',
                                    thresholds=(0.5, )))
        metric.dataset_meta = dict(classes=['x', 'y'],
                                   class_groups=['head', 'tail'])
        for batch in batches:
            metric.process(None, batch)
        return metric.evaluate(size=size)

    plain = evaluate([samples[:2], samples[2:]], 4)
    padded = evaluate([samples[:3], samples[3:] + samples[:1]], 4)
    assert padded == plain
    assert plain['prototypes/soft_perplexity'] != evaluate(
        [samples[:3], samples[3:] + samples[:1]], 5)[
            'prototypes/soft_perplexity']  # the repeat would count


def test_embedding_leaders_count_the_datas_own_spacing():
    """Embeddings in 3 tight clusters: 3 leaders at a coarse eps, all of
    them at a fine one; only the first max_embeddings count."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.eye(3, 8)
    emb = centres.repeat_interleave(4, 0) + 1e-3 * torch.randn(
        12, 8, generator=gen)
    far = torch.zeros(1, 8)
    far[0, 7] = 1.  # a 4th direction, beyond max_embeddings
    emb = torch.cat([emb, far])
    metric = METRICS.build(dict(type='PrototypeDiversityMetric',
                                thresholds=(1e-5, 0.5), max_embeddings=12))
    protos = torch.eye(2, 8)
    samples = [dict(sample([0.], 0, 'query', torch.tensor([1., 0.]), protos),
                    embedding=e) for e in emb]
    metric.process(None, samples[:5])
    metric.process(None, samples[5:])
    result = metric.evaluate(size=13)
    assert result['prototypes/embedding_count'] == 12
    assert result['prototypes/embedding_leaders@0.5'] == 3
    assert result['prototypes/embedding_leaders@1e-05'] == 12
    # the counter restarts for the next evaluation
    metric.process(None, samples[:2])
    assert metric.evaluate(size=2)['prototypes/embedding_count'] == 2


def test_embedding_leaders_follow_sample_idx_not_arrival_order():
    """As gathered from 2 processes (rank 0: even, rank 1: odd samples), the
    embeddings go back to data order before the cut: 3 clusters in order
    a a b b c c; the first 4 by index hold 2 clusters."""
    centres = torch.eye(3, 8).repeat_interleave(2, 0)  # a a b b c c
    protos = torch.eye(2, 8)

    def samples(indices):
        return [dict(sample([0.], 0, 'query', torch.tensor([1., 0.]),
                            protos), embedding=centres[i], sample_idx=i)
                for i in indices]

    ranks = [METRICS.build(dict(type='PrototypeDiversityMetric',
                                thresholds=(0.5, ), max_embeddings=4))
             for _ in range(2)]
    ranks[0].process(None, samples([0, 2, 4]))  # each keeps its 3
    ranks[1].process(None, samples([1, 3, 5]))
    # gathered: 0 2 4 1 3 5, whose first 4 would hold all 3 clusters
    result = ranks[0].compute_metrics(ranks[0].results + ranks[1].results)
    assert result['embedding_count'] == 4
    assert result['embedding_leaders@0.5'] == 2  # 0 1 2 3: a, b; not c


def test_embedding_leaders_optional_and_validated():
    metric = METRICS.build(dict(type='PrototypeDiversityMetric',
                                max_embeddings=0))
    protos = torch.eye(2, 4)
    samples = [dict(sample([0.], 0, 'query', torch.tensor([1., 0.]), protos),
                    embedding=torch.ones(4))]
    metric.process(None, samples)
    assert 'prototypes/embedding_count' not in metric.evaluate(size=1)
    with pytest.raises(ValueError, match='max_embeddings'):
        METRICS.build(dict(type='PrototypeDiversityMetric',
                           max_embeddings=-1))
    metric = METRICS.build(dict(type='PrototypeDiversityMetric'))
    samples[0]['embedding'] = torch.full((4, ), float('nan'))
    metric.process(None, samples)
    with pytest.raises(ValueError, match='embeddings'):
        metric.evaluate(size=1)


def test_prototype_classes_majority_and_unused():
    owner = prototype_classes(torch.tensor([0, 0, 0, 2]),
                              torch.tensor([1, 1, 0, 0]), 4)
    assert owner.tolist() == [1, -1, 0, -1]


def test_knn_dataset_tags_and_metainfo(fmnist_root):
    pipeline = [dict(type='PackInputs')]
    ds = DATASETS.build(dict(
        type='KNNDataset',
        bank=dict(type='LocalFashionMNIST', data_root=fmnist_root,
                  split='train', indices=3, pipeline=pipeline),
        query=dict(type='LocalFashionMNIST', data_root=fmnist_root,
                   split='test', indices=2, pipeline=pipeline)))
    assert len(ds) == 5
    splits = [ds[i]['data_samples'].knn_split for i in range(5)]
    assert splits == ['bank'] * 3 + ['query'] * 2
    # one index space (the splits' own indices would repeat 0, 1)
    assert [ds[i]['data_samples'].sample_idx for i in range(5)] == \
        list(range(5))
    assert ds[-1]['data_samples'].sample_idx == 4
    assert len(ds.metainfo['classes']) == 10


def test_knn_dataset_pipeline_serves_both_splits(fmnist_root):
    """Given once (what mmpretrain's FeatureExtractor reads), for both
    splits; a split with another pipeline is refused, not half-used."""
    pipeline = [dict(type='Resize', scale=(8, 8), backend='pillow'),
                dict(type='PackInputs')]
    split = dict(type='LocalFashionMNIST', data_root=fmnist_root, indices=2)
    ds = DATASETS.build(dict(type='KNNDataset', pipeline=pipeline,
                             bank=split, query=dict(split, split='test')))
    assert [tuple(ds[i]['inputs'].shape) for i in range(4)] == \
        [(1, 8, 8)] * 4
    config = dict(type='KNNDataset', pipeline=pipeline, bank=split,
                  query=split)  # one split built alone: with the pipeline
    assert KNNDataset.split_config(config, 'query') == dict(
        split, pipeline=pipeline)
    same = DATASETS.build(dict(type='KNNDataset', pipeline=pipeline,
                               bank=dict(split, pipeline=pipeline),
                               query=split))
    assert same[0]['inputs'].shape == (1, 8, 8)
    with pytest.raises(ValueError, match='its query another one'):
        DATASETS.build(dict(type='KNNDataset', pipeline=pipeline, bank=split,
                            query=dict(split, pipeline=pipeline[1:])))


def test_monitor_hook_logs_unique_while_training(tmp_path, fmnist_root):
    """It logs exactly prototype_diversity of the current means, after
    the EM step (means sampled from 16 rows and not merged: far from 100 %
    unique)."""
    from gmproto_mm.evaluation.functional.diversity import \
        prototype_diversity
    cfg = small_cfg(DECOUPLED_FMNIST, str(tmp_path), num_images=16)
    cfg.model.head.gmm.update(init='sample', init_samples=1, merge_within=0)
    cfg.custom_hooks = [dict(type='OnlineEMHook'),
                        dict(type='PrototypeMonitorHook', interval=1)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    expected = prototype_diversity(runner.model.head.gmm.means)
    assert expected['unique@0.1'] < 10
    for eps in (0.025, 0.05, 0.1, 0.25, 0.5):
        history = runner.message_hub.get_scalar(f'train/proto_unique@{eps}')
        assert len(history.data[0]) == 2  # both iterations
        assert history.current() == expected[f'unique@{eps}'], eps


def test_find_prototype_banks_for_each_head():
    from tests.test_models.test_dino import tiny_dino
    joint = find_prototype_banks(tiny_dino(num_prototypes=8))
    assert list(joint) == ['head'] and joint['head'].shape == (8, 16)
    decoupled = find_prototype_banks(tiny_dino(head=dict(
        type='DecoupledGMMHead', in_channels=16, num_prototypes=8)))
    assert list(decoupled) == ['head']


def planted_checkpoint(config: str, path) -> torch.Tensor:
    """Save the fresh model of ``configs/<config>`` with a non-trivial
    prototype bank: for a decoupled model, the second half of the GMM
    means are copies of the first half moved by growing noise (norm 0 to
    0.2), so unique@eps
    falls well below 100 % and differs between the thresholds. Return the
    bank the checkpoint holds (the teacher's, as the metric reads it)."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    from gmproto_mm.evaluation.functional.prototype_io import \
        prototypes_from_state_dict
    from tests.conftest import REPO_ROOT
    model = MODELS.build(Config.fromfile(f'{REPO_ROOT}/configs/{config}')
                         .model)
    if hasattr(model.head, 'gmm'):
        mu = model.head.gmm.mu
        half = mu.shape[0] // 2
        # not seed 0: that is the seed of the means themselves
        gen = torch.Generator().manual_seed(1234)
        noise = torch.nn.functional.normalize(
            torch.randn(half, mu.shape[1], generator=gen), dim=1)
        scale = torch.linspace(0, 0.2, half)[:, None]
        mu[half:2 * half] = torch.nn.functional.normalize(
            mu[:half] + scale * noise, dim=1)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    bank, = prototypes_from_state_dict(model.state_dict(),
                                       copy='teacher').values()
    return bank


def model_features(config: str, ckpt: str, options) -> tuple:
    """The checkpoint's model in predict mode on the same bank and query
    images as tools/test.py: (features, labels, splits)."""
    from mmengine.config import Config, DictAction
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    from tests.conftest import REPO_ROOT
    cfg = Config.fromfile(f'{REPO_ROOT}/configs/{config}')
    cfg.merge_from_dict({
        k: DictAction._parse_iterable(v)
        for k, v in (o.split('=', 1) for o in options)})
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu')
    model.eval()
    feats, labels, splits = [], [], []
    for batch in Runner.build_dataloader(cfg.test_dataloader):
        for out in model.test_step(batch):
            feats.append(out.backbone_feat)
            labels.append(int(out.gt_label))
            splits.append(out.knn_split)
    return torch.stack(feats), torch.tensor(labels), splits


@pytest.mark.slow
@pytest.mark.parametrize('config', [JOINT_FMNIST, DECOUPLED_FMNIST])
def test_tools_test_reports_diversity_usage_and_knn(config, tmp_path,
                                                    fmnist_root):
    """tools/test.py's numbers are the functions applied to the
    checkpoint: diversity of its bank (planted duplicates for the
    decoupled model) and the weighted k-NN of the model's own features."""
    from gmproto_mm.evaluation.functional import (prototype_diversity,
                                                  weighted_knn_predict)
    ckpt = str(tmp_path / 'tiny.pth')
    bank = planted_checkpoint(config, ckpt)
    out = str(tmp_path / 'metrics.json')
    options = SMALL_TEST_OPTIONS + ['test_dataloader.batch_size=32']
    run_tool([sys.executable, 'tools/test.py', f'configs/{config}', ckpt,
              '--work-dir', str(tmp_path), '--out', out, '--out-item',
              'metrics', '--cfg-options'] + options)
    with open(out) as f:
        metrics = json.load(f)
    for key in ('prototypes/unique@0.025', 'prototypes/components@0.5',
                'prototypes/used_prototypes', 'prototypes/argmax_perplexity',
                'prototypes/soft_perplexity',
                'prototypes/embedding_leaders@0.5', 'knn/top1', 'knn/top5'):
        assert key in metrics, key
    assert metrics['prototypes/num_prototypes'] == {
        JOINT_FMNIST: 1024, DECOUPLED_FMNIST: 256}[config]
    assert metrics['prototypes/embedding_count'] == 96  # bank + queries
    # the diversity is the function's on the checkpoint's (teacher) bank
    expected = prototype_diversity(bank)
    for key, value in expected.items():
        assert metrics[f'prototypes/{key}'] == pytest.approx(value), key
    if config == DECOUPLED_FMNIST:  # planted: far from 100 %, eps-dependent
        assert expected['unique@0.5'] == 50.0  # every copy a duplicate
        assert expected['unique@0.1'] == 75.0  # the copies moved < 0.1
        assert expected['unique@0.025'] > expected['unique@0.1']
    # k-NN: weighted_knn_predict on the model's predict-mode features
    feats, labels, splits = model_features(config, ckpt, options)
    is_bank = torch.tensor([s == 'bank' for s in splits])
    assert int(is_bank.sum()) == 64 and len(splits) == 96
    scores = weighted_knn_predict(feats[~is_bank], feats[is_bank],
                                  labels[is_bank], 10, k=20,
                                  temperature=0.07)
    top1 = 100.0 * (scores.argmax(1) == labels[~is_bank]).float().mean()
    assert metrics['knn/top1'] == pytest.approx(float(top1))
    assert 0 <= metrics['knn/top1'] <= metrics['knn/top5'] <= 100


@pytest.mark.slow
def test_dist_test_two_cpu_processes_match_one(tmp_path, fmnist_root):
    """tools/dist_test.sh with 2 gloo processes reports what one process
    does: k-NN, diversity, usage and the embeddings' leaders, also when
    mmengine's sampler pads: 95 samples = 2 ranks x 48 - 1, batches of 16,
    so rank 1 ends with a repeat of sample 0 that no metric may count."""
    ckpt = save_fresh_checkpoint(DECOUPLED_FMNIST,
                                 tmp_path / 'tiny.pth')
    options = ['--cfg-options'] + SMALL_TEST_OPTIONS + [
        'test_dataloader.dataset.query.indices=31',
        'test_dataloader.batch_size=16']
    results = []
    for name, launch in (
            ('one', [sys.executable, 'tools/test.py',
                     f'configs/{DECOUPLED_FMNIST}', ckpt]),
            ('two', ['bash', 'tools/dist_test.sh',
                     f'configs/{DECOUPLED_FMNIST}', ckpt, '2'])):
        out = tmp_path / f'{name}.json'
        run_tool(launch + ['--work-dir', str(tmp_path / name), '--out',
                           str(out), '--out-item', 'metrics'] + options,
                 env_extra=dict(PORT=str(free_port())))
        results.append(json.loads(out.read_text()))
    one, two = results
    assert one['prototypes/embedding_count'] == 95
    assert set(one) == set(two)
    for key in one:
        if key.startswith(('prototypes/', 'knn/')):
            assert two[key] == pytest.approx(one[key], rel=1e-5), key


class _Bank(torch.nn.Module):
    def __init__(self, prototypes: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer('prototypes', prototypes)


def test_monitor_hook_spreads_a_measurement_over_iterations(monkeypatch):
    """A bank larger than one tile is measured a bounded number of tiles
    per iteration (no rank waits for the whole O(K^2 D) measurement), on
    a copy: the values logged when the last tile is done are exactly
    prototype_diversity of the bank at the start, with the iteration they
    belong to; the next measurement starts only after it."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub, MMLogger

    from gmproto_mm.evaluation.functional import diversity
    tiles = []
    for name in ('_off_diagonal_tile', '_diagonal_tile'):
        tile = getattr(diversity, name)
        monkeypatch.setattr(
            diversity, name,
            lambda *a, _tile=tile, **k: tiles.append(runner.iter) or
            _tile(*a, **k))
    def no_components(*args, **kwargs):
        raise AssertionError('the monitor logs leaders only: no union-find')

    monkeypatch.setattr(diversity, '_union', no_components)
    gen = torch.Generator().manual_seed(0)
    bank = torch.nn.functional.normalize(torch.randn(40, 8, generator=gen),
                                         dim=1)
    bank[20:] = torch.nn.functional.normalize(
        bank[:20] + 0.02 * torch.randn(20, 8, generator=gen), dim=1)
    model = _Bank(bank)
    runner = SimpleNamespace(
        model=model, iter=0, max_iters=40,
        message_hub=MessageHub.get_instance('test_monitor_spreads'),
        logger=MMLogger.get_instance('test_monitor_spreads'))
    hook = PrototypeMonitorHook(interval=3, thresholds=(0.1, 0.5),
                                tiles_per_iter=2, block_size=8)
    assert diversity.diversity_tiles(40, 8) == 15  # 8 iterations at 2
    hook.before_train(runner)
    at_start = None
    for t in range(20):
        runner.iter = t
        if t == 2:  # the first start: iteration 3 in the log
            at_start = model.prototypes.clone()
        hook.after_train_iter(runner, t)
        model.prototypes.mul_(-1.0).add_(0.01)  # the bank moves on
    per_iter = {t: tiles.count(t) for t in set(tiles)}
    assert max(per_iter.values()) == 2
    monkeypatch.undo()  # the reference may join components
    expected = prototype_diversity(at_start, (0.1, 0.5), components=False)
    assert expected['unique@0.1'] < 100
    hub = runner.message_hub
    for eps in ('0.1', '0.5'):
        values, steps = hub.get_scalar(f'train/proto_unique@{eps}').data
        assert values[0] == expected[f'unique@{eps}']
    measured = hub.get_scalar('train/proto_measured_iter').data[0]
    assert measured[0] == 3
    # first finished at iteration index 2 + 7 = 9; the second started at
    # index 11 (the next multiple of 3 after it finished), not before
    assert min(t for t in tiles if t > 9) == 11
    assert list(measured[:2]) == [3, 12]
