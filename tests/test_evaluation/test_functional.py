"""Tests of the pure-math evaluation functions (diversity, k-NN, prototype IO)
and of ``tools/analysis/plot_prototypes.py``."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gmproto_mm.evaluation.functional.diversity as diversity
from gmproto_mm.evaluation.functional.diversity import (
    nearest_neighbour_cosine, prototype_diversity, prototype_usage,
    usage_perplexity)
from gmproto_mm.evaluation.functional.knn import (per_group_accuracy,
                                                  topk_accuracy,
                                                  weighted_knn_predict)
from gmproto_mm.evaluation.functional.prototype_io import (
    load_prototypes, prototypes_from_state_dict)

REPO_ROOT = Path(__file__).resolve().parents[2]
EPS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


# ---------------------------------------------------------------- helpers
def brute_force_diversity(protos: torch.Tensor, thresholds) -> dict:
    """Plain K x K reference: float64 distances, sequential greedy, DFS."""
    x = protos.double()
    x = x / x.norm(dim=1, keepdim=True)
    dist = torch.linalg.vector_norm(x[:, None] - x[None], dim=-1)
    num = x.shape[0]
    out = {}
    for eps in thresholds:
        adj = (dist < eps).numpy()
        np.fill_diagonal(adj, False)
        kept = []
        for i in range(num):
            if not any(adj[i, j] for j in kept):
                kept.append(i)
        seen, components = np.zeros(num, bool), 0
        for start in range(num):
            if seen[start]:
                continue
            components += 1
            stack = [start]
            seen[start] = True
            while stack:
                node = stack.pop()
                for nb in np.flatnonzero(adj[node] & ~seen):
                    seen[nb] = True
                    stack.append(nb)
        out[f'unique@{eps:g}'] = 100.0 * len(kept) / num
        out[f'components@{eps:g}'] = float(components)
    return out


def on_circle(angles, dim: int = 4) -> torch.Tensor:
    """Unit vectors at the given angles in the first coordinate plane."""
    x = torch.zeros(len(angles), dim, dtype=torch.float64)
    x[:, 0] = torch.cos(torch.tensor(angles, dtype=torch.float64))
    x[:, 1] = torch.sin(torch.tensor(angles, dtype=torch.float64))
    return x


def chord_angle(dist: float) -> float:
    """Angle between unit vectors at Euclidean distance ``dist``."""
    return 2 * math.asin(dist / 2)


# ---------------------------------------------------- prototype_diversity
def test_chain_greedy_leaders_differ_from_components():
    # a-b and b-c are within eps, a-c is not; d is far away.
    step = chord_angle(0.08)  # |a-b| = |b-c| = 0.08, |a-c| ~ 0.16
    a, b, c = on_circle([0.0, step, 2 * step])
    d = torch.tensor([0., 0., 1., 0.], dtype=torch.float64)
    res = prototype_diversity(torch.stack([a, b, c, d]), thresholds=(0.1, ))
    # greedy keeps a, drops b (near a), keeps c (only near dropped b), d.
    assert res == {'unique@0.1': 75.0, 'components@0.1': 2.0}
    # Index order matters for leaders, not for components: b first drops
    # both a and c.
    res = prototype_diversity(torch.stack([b, a, c, d]), thresholds=(0.1, ))
    assert res == {'unique@0.1': 50.0, 'components@0.1': 2.0}
    # At a larger eps everything on the arc is one leader.
    res = prototype_diversity(torch.stack([a, b, c, d]), thresholds=(0.2, ))
    assert res == {'unique@0.2': 50.0, 'components@0.2': 2.0}


def test_planted_duplicates_exact_counts():
    gen = torch.Generator().manual_seed(0)
    base = torch.linalg.qr(torch.randn(64, 64, generator=gen))[0][:40]
    # rows 40..59 duplicate rows 0..9 twice (tiny noise), in shuffled order
    dup = base[torch.arange(20) % 10] + 1e-4 * torch.randn(
        20, 64, generator=gen)
    protos = torch.cat([base, dup])[torch.randperm(60, generator=gen)]
    res = prototype_diversity(protos, thresholds=(0.01, 0.5), block_size=7)
    assert res['unique@0.01'] == pytest.approx(100 * 40 / 60)
    assert res['components@0.01'] == 40.0
    assert res['unique@0.5'] == pytest.approx(100 * 40 / 60)
    assert res == brute_force_diversity(protos, (0.01, 0.5))


def test_all_distinct_is_100_percent():
    res = prototype_diversity(torch.eye(16, 32))
    for eps in diversity.DEFAULT_THRESHOLDS:
        assert res[f'unique@{eps:g}'] == 100.0
        assert res[f'components@{eps:g}'] == 16.0
    assert list(res) == [
        f'{kind}@{eps:g}' for eps in diversity.DEFAULT_THRESHOLDS
        for kind in ('unique', 'components')
    ]


def steps_of(steps):
    """Each value a generator yields, then the value it returns."""
    while True:
        try:
            yield next(steps)
        except StopIteration as done:
            yield done.value
            return


@pytest.mark.parametrize('kind', ['gaussian', 'clusters', 'arc'])
@pytest.mark.parametrize('edge_limit', [1 << 20, 0])
def test_blockwise_equals_brute_force(kind, edge_limit, monkeypatch):
    # edge_limit 0 forces the dense-tile code paths.
    monkeypatch.setattr(diversity, '_EDGE_LIST_LIMIT', edge_limit)
    seed = ['gaussian', 'clusters', 'arc'].index(kind)
    gen = torch.Generator().manual_seed(seed)
    for num, dim in ((1, 3), (23, 5), (61, 8)):
        if kind == 'gaussian':
            x = torch.randn(num, dim, generator=gen)
        elif kind == 'clusters':
            centres = torch.randn(max(1, num // 6), dim, generator=gen)
            pick = torch.randint(0, centres.shape[0], (num, ), generator=gen)
            x = centres[pick] + 0.04 * torch.randn(num, dim, generator=gen)
        else:  # a dense arc: long chains, leaders != components
            angles = (torch.rand(num, generator=gen) * 0.6).tolist()
            x = on_circle(angles, dim) + 0.005 * torch.randn(
                num, dim, generator=gen, dtype=torch.float64)
        ref = brute_force_diversity(x, EPS)
        leaders = {k: v for k, v in ref.items() if k.startswith('unique')}
        for block_size in (1, 4, 7, num, 4096):
            assert prototype_diversity(x, EPS, block_size=block_size) == ref
            # the leaders alone (what PrototypeMonitorHook logs), one tile
            # per next(): the last one returns the result
            steps = diversity.prototype_diversity_steps(
                x, EPS, block_size, components=False)
            done = list(steps_of(steps))
            assert done[:-1] == list(range(1, len(done)))
            assert len(done) == diversity.diversity_tiles(num, block_size)
            assert done[-1] == leaders


def test_exact_at_the_threshold():
    # pairs at distance eps * (1 -/+ tiny): inside the float32 error margin,
    # decided by the float64 distance like a brute-force computation.
    eps, rows = 0.1, []
    for k, scale in enumerate((1 - 1e-9, 1 + 1e-9, 1 - 1e-7, 1 + 1e-7)):
        pair = torch.zeros(2, 8, dtype=torch.float64)
        theta = chord_angle(eps * scale)
        pair[0, 2 * k] = 1
        pair[1, 2 * k] = math.cos(theta)
        pair[1, 2 * k + 1] = math.sin(theta)
        rows.append(pair)
    x = torch.cat(rows)
    res = prototype_diversity(x, (eps, ))
    assert res == {'unique@0.1': 75.0, 'components@0.1': 6.0}
    assert res == brute_force_diversity(x, (eps, ))


def test_input_types_and_scale_invariance():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(30, 6, generator=gen)
    x = torch.cat([x, x[:5] * 7.0])  # scaled copies are duplicates
    ref = prototype_diversity(x.double())
    assert ref['unique@0.025'] == pytest.approx(100 * 30 / 35)
    assert prototype_diversity(x) == ref
    assert prototype_diversity(x.numpy()) == ref
    assert prototype_diversity(x.half()) == prototype_diversity(
        x.half().double())
    assert prototype_diversity(x, thresholds=0.1) == {
        'unique@0.1': ref['unique@0.1'],
        'components@0.1': ref['components@0.1']
    }


def test_fully_collapsed_65536():
    num = 65536
    protos = torch.randn(1, 256).expand(num, 256).contiguous()
    res = prototype_diversity(protos)
    for eps in diversity.DEFAULT_THRESHOLDS:
        assert res[f'unique@{eps:g}'] == 100.0 / num
        assert res[f'components@{eps:g}'] == 1.0


@pytest.mark.parametrize('bad, match', [
    (torch.randn(5), '2-D'),
    (torch.randn(2, 3, 4), '2-D'),
    (torch.randn(0, 4), 'empty'),
    (torch.randn(4, 0), 'empty'),
    (torch.tensor([[1., 0.], [float('nan'), 0.], [0., float('inf')]]),
     '2 rows with non-finite'),
    (torch.tensor([[1., 0.], [0., 0.]]), '1 zero-norm rows'),
])
def test_malformed_prototypes(bad, match):
    with pytest.raises(ValueError, match=match):
        prototype_diversity(bad)
    with pytest.raises(ValueError, match=match):
        nearest_neighbour_cosine(bad)


@pytest.mark.parametrize('thresholds', [(0.0, ), (0.1, -1.0), (),
                                        (float('nan'), )])
def test_bad_thresholds(thresholds):
    with pytest.raises(ValueError, match='thresholds'):
        prototype_diversity(torch.eye(3), thresholds)


def test_bad_block_size():
    with pytest.raises(ValueError, match='block_size'):
        prototype_diversity(torch.eye(3), block_size=0)


# ------------------------------------------------ nearest_neighbour_cosine
def test_nearest_neighbour_cosine_brute_force():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(45, 7, generator=gen)
    x[10] = 3 * x[3]
    xn = torch.nn.functional.normalize(x.double(), dim=1)
    sim = xn @ xn.T
    sim.fill_diagonal_(-2)
    ref = sim.max(dim=1).values
    for block_size in (1, 8, 45, 100):
        got = nearest_neighbour_cosine(x, block_size=block_size)
        assert got.shape == (45, ) and got.dtype == torch.float32
        torch.testing.assert_close(got.double(), ref, atol=1e-5, rtol=0)
    assert got[3] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match='at least 2'):
        nearest_neighbour_cosine(torch.ones(1, 3))


# ---------------------------------------------------------- prototype_usage
def test_prototype_usage():
    argmax = torch.tensor([0, 0, 0, 2])
    res = prototype_usage(argmax, num_prototypes=5)
    p = torch.tensor([0.75, 0.25], dtype=torch.float64)
    argmax_ppl = math.exp(-(p * p.log()).sum().item())
    assert res == pytest.approx({'used_prototypes': 2.0,
                                 'argmax_perplexity': argmax_ppl})
    probs = torch.full((4, 5), 0.2)
    res = prototype_usage(argmax, 5, probs=probs)
    assert res == pytest.approx({'used_prototypes': 2.0,
                                 'argmax_perplexity': argmax_ppl,
                                 'soft_perplexity': 5.0})
    # summed probabilities (what a streaming metric keeps) give the same
    assert prototype_usage(argmax, 5, probs=probs.sum(0)) == res
    assert usage_perplexity(np.array([3, 0, 0])) == pytest.approx(1.0)


@pytest.mark.parametrize('kwargs, match', [
    (dict(argmax=torch.tensor([0, 5]), num_prototypes=5), r'\[0, 5\)'),
    (dict(argmax=torch.tensor([], dtype=torch.long), num_prototypes=5),
     'non-empty'),
    (dict(argmax=torch.tensor([0.0]), num_prototypes=5), 'integer'),
    (dict(argmax=torch.tensor([0]), num_prototypes=5,
          probs=torch.ones(1, 4)), 'probs must be'),
    (dict(argmax=torch.tensor([0]), num_prototypes=5,
          probs=torch.ones(2, 5)), 'same samples'),
    (dict(argmax=torch.tensor([0]), num_prototypes=5,
          probs=-torch.ones(5)), 'non-negative'),
    (dict(argmax=torch.tensor([0]), num_prototypes=0), 'num_prototypes'),
])
def test_prototype_usage_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prototype_usage(**kwargs)


# ------------------------------------------------------------------- k-NN
def brute_force_knn(query, bank, labels, num_classes, k, temperature):
    q = torch.nn.functional.normalize(query.double(), dim=1)
    b = torch.nn.functional.normalize(bank.double(), dim=1)
    scores = torch.zeros(len(q), num_classes, dtype=torch.float64)
    for i in range(len(q)):
        sims = [(float(q[i] @ b[j]), j) for j in range(len(b))]
        for sim, j in sorted(sims, reverse=True)[:k]:
            scores[i, labels[j]] += math.exp(sim / temperature)
    return scores


def test_weighted_knn_matches_brute_force():
    gen = torch.Generator().manual_seed(2)
    bank = torch.randn(50, 6, generator=gen)
    labels = torch.randint(0, 4, (50, ), generator=gen)
    query = torch.randn(13, 6, generator=gen)
    for k in (1, 5, 20):
        ref = brute_force_knn(query, bank, labels, 4, k, 0.07)
        for block_size, bank_block_size in ((1024, 65536), (3, 7), (1, 1)):
            got = weighted_knn_predict(
                query, bank, labels, 4, k=k, temperature=0.07,
                block_size=block_size, bank_block_size=bank_block_size)
            assert got.shape == (13, 4) and got.dtype == torch.float32
            torch.testing.assert_close(got.double(), ref, rtol=1e-5,
                                       atol=1e-3)


def test_weighted_knn_hand_built_and_clamped_k():
    bank = torch.tensor([[1., 0.], [0., 2.], [3., 3.]])
    labels = torch.tensor([0, 1, 2])
    query = torch.tensor([[2., 0.], [0., 1.]])
    scores = weighted_knn_predict(query, bank, labels, 3, k=2,
                                  temperature=0.5)
    c = math.cos(math.pi / 4)
    expected = torch.tensor([[math.exp(2), 0, math.exp(c / 0.5)],
                             [0, math.exp(2), math.exp(c / 0.5)]])
    torch.testing.assert_close(scores, expected)
    # k > M: every bank sample votes
    scores = weighted_knn_predict(query, bank, labels, 3, k=100,
                                  temperature=0.5)
    expected[:, :2] += torch.tensor([[0, 1.], [1., 0]])  # exp(0 / T) = 1
    torch.testing.assert_close(scores, expected)
    assert topk_accuracy(scores, torch.tensor([0, 2]), topk=(1, 2)) == {
        'top1': 50.0, 'top2': 100.0}


@pytest.mark.parametrize('kwargs, match', [
    (dict(query_feats=torch.randn(2, 3)), 'dimension'),
    (dict(bank_labels=torch.tensor([0, 1])), '1-D with 4'),
    (dict(bank_labels=torch.tensor([0, 1, 2, 3])), r'\[0, 3\)'),
    (dict(query_feats=torch.tensor([[float('nan'), 0.]])), 'non-finite'),
    (dict(bank_feats=torch.randn(4)), '2-D'),
    (dict(k=0), 'k must'),
    (dict(temperature=0.0), 'temperature'),
])
def test_weighted_knn_errors(kwargs, match):
    args = dict(query_feats=torch.randn(2, 2), bank_feats=torch.randn(4, 2),
                bank_labels=torch.tensor([0, 1, 2, 0]), num_classes=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        weighted_knn_predict(**args)


def test_topk_accuracy():
    scores = torch.tensor([[.1, .5, .4], [.7, .2, .1], [.2, .3, .5],
                           [.6, .3, .1]])
    labels = torch.tensor([2, 0, 0, 1])
    assert topk_accuracy(scores, labels) == {'top1': 25.0, 'top5': 100.0}
    assert topk_accuracy(scores, labels, topk=(2, )) == {'top2': 75.0}
    with pytest.raises(ValueError, match='labels'):
        topk_accuracy(scores, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='topk'):
        topk_accuracy(scores, labels, topk=(0, ))


def test_per_group_accuracy():
    pred = torch.tensor([0, 1, 2, 2, 3, 0])
    labels = torch.tensor([0, 1, 2, 3, 3, 3])
    groups = ['head', 'head', 'medium', 'tail']
    assert per_group_accuracy(pred, labels, groups) == {
        'head': 100.0, 'medium': 100.0, 'tail': pytest.approx(100 / 3)}
    mapping = {'0': 'head', 1: 'head', 2: 'rare', 3: 'rare', 4: 'unused'}
    assert per_group_accuracy(pred, labels, mapping) == {
        'head': 100.0, 'rare': 50.0}
    with pytest.raises(ValueError, match='no group'):
        per_group_accuracy(pred, labels, groups[:3])
    with pytest.raises(ValueError, match='equal length'):
        per_group_accuracy(pred[:2], labels, groups)


# ------------------------------------------------------------ prototype IO
def test_prototypes_from_state_dict_key_styles():
    mu, v, w, wv = (torch.randn(8, 4), torch.randn(6, 4), torch.randn(5, 4),
                    torch.randn(7, 4))
    sd = {
        'backbone.layers.0.weight': torch.randn(4, 4),
        'head.em_bank.gmm.mu': mu,
        'head.em_bank.gmm.var': torch.ones(8, 4),
        'teacher.module.head.em_bank.gmm.mu': torch.zeros(8, 4),
        'dino_head.last_layer.parametrizations.weight.original0':
        torch.ones(6, 1),
        'dino_head.last_layer.parametrizations.weight.original1': v,
        'old_head.last_layer.weight_g': torch.ones(7, 1),
        'old_head.last_layer.weight_v': wv,
        'module.lin_head.last_layer.weight': w,
        'lin_head.last_layer.bias': torch.zeros(5),
        'teacher.module.dino_head.last_layer.weight': torch.zeros(6, 4),
        'teacher.steps': torch.tensor(3),
    }
    banks = prototypes_from_state_dict(sd)
    assert list(banks) == ['head.em_bank', 'dino_head', 'old_head', 'lin_head']
    for name, ref in zip(banks, (mu, v, wv, w)):
        assert torch.equal(banks[name], ref)
    # two banks with one prefix get their module part appended
    both = prototypes_from_state_dict({'head.gmm.mu': mu,
                                       'head.last_layer.weight': w})
    assert list(both) == ['head.gmm', 'head.last_layer']
    assert list(prototypes_from_state_dict({'gmm.mu': mu})) == ['gmm']
    assert prototypes_from_state_dict({'head.gmm.mu': torch.zeros(3)}) == {}
    with pytest.raises(ValueError, match='mapping'):
        prototypes_from_state_dict([mu])


def test_prototypes_from_state_dict_teacher_copy():
    """The teacher EMA-copies a joint head's last layer as
    ``teacher.module.<bank>``; a GMM bank is shared (no copy)."""
    student, ema, mu = torch.randn(6, 4), torch.randn(6, 4), torch.randn(8, 4)
    sd = {'head.last_layer.parametrizations.weight.original1': student,
          'teacher.module.head.parametrizations.weight.original0':
          torch.ones(6, 1),
          'teacher.module.head.parametrizations.weight.original1': ema,
          'teacher.module.backbone.proj.weight': torch.randn(6, 4),
          'patch_head.em_bank.gmm.mu': mu}
    teacher = prototypes_from_state_dict(sd, copy='teacher')
    assert list(teacher) == ['head', 'patch_head.em_bank']
    assert torch.equal(teacher['head'], ema)
    assert torch.equal(teacher['patch_head.em_bank'], mu)
    assert torch.equal(prototypes_from_state_dict(sd)['head'], student)
    # DDP-wrapped checkpoints
    ddp = {f'module.{k}': v for k, v in sd.items()}
    assert torch.equal(
        prototypes_from_state_dict(ddp, copy='teacher')['head'], ema)
    with pytest.raises(ValueError, match="copy must be one of"):
        prototypes_from_state_dict(sd, copy='ema')


def test_load_prototypes(tmp_path):
    mu = torch.randn(8, 4)
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': {'head.gmm.mu': mu}},
               path)
    banks = load_prototypes(path)
    assert list(banks) == ['head'] and torch.equal(banks['head'], mu)
    torch.save({'neck.fc.weight': torch.randn(3, 3)}, tmp_path / 'bare.pth')
    with pytest.raises(ValueError, match='neck.fc.weight'):
        load_prototypes(tmp_path / 'bare.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_prototypes(tmp_path / 'missing.pth')


# ------------------------------------------------------------- plot script
@pytest.mark.slow
def test_plot_prototypes_script(tmp_path):
    gen = torch.Generator().manual_seed(4)
    spread = torch.randn(40, 8, generator=gen)
    collapsed = torch.randn(4, 8, generator=gen).repeat(10, 1)
    ckpts = []
    for name, weight in (('spread', spread), ('collapsed', collapsed)):
        ckpts.append(str(tmp_path / f'{name}.pth'))
        torch.save(
            {'state_dict': {
                'head.last_layer.parametrizations.weight.original1': weight,
                'teacher.module.head.last_layer.parametrizations.weight.'
                'original1': weight
            }}, ckpts[-1])
    usage = tmp_path / 'usage.json'
    usage.write_text(json.dumps({'counts': [5, 0, 3, 1] * 10}))
    trajectory = tmp_path / 'frozen.json'  # frozen_encoder_collapse --out
    trajectory.write_text(json.dumps({'unique': {
        'steps': [0, 10, 20], '0.025': [100.0, 90.0, 50.0],
        '0.5': [100.0, 40.0, 5.0]}}))
    out = tmp_path / 'plots'
    script = REPO_ROOT / 'tools' / 'analysis' / 'plot_prototypes.py'
    env = dict(os.environ, PYTHONWARNINGS='ignore', MPLBACKEND='Agg')
    proc = subprocess.run(
        [sys.executable, str(script), *ckpts, '--out', str(out), '--labels',
         'spread', 'collapsed', '--usage', str(usage), '--trajectories',
         str(trajectory)],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for png in ('unique_vs_eps.png', 'nn_cosine_hist.png', 'usage.png',
                'frozen_encoder.png'):
        path = out / png
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        assert str(path) in proc.stdout
    assert 'unique@0.025=10.00%' in proc.stdout  # 4 distinct of 40

    proc = subprocess.run(
        [sys.executable, str(script), ckpts[0], '--out', str(tmp_path / 'b')],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'skipping usage.png' in proc.stdout
    assert not (tmp_path / 'b' / 'usage.png').exists()
    assert not (tmp_path / 'b' / 'frozen_encoder.png').exists()
