"""DumpPredictions: small per-sample records in data order, the k-NN
prediction of every query, padded repeats not dumped."""
import mmengine
import pytest
import torch
from mmpretrain.registry import METRICS

from gmproto_mm.evaluation.functional import weighted_knn_predict

K, D, C = 5, 4, 3


def samples(num_bank=6, num_query=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(num_bank + num_query, 8, generator=gen)
    probs = torch.softmax(torch.randn(len(feats), K, generator=gen), 1)
    protos = torch.randn(K, D, generator=gen)
    return [dict(backbone_feat=feats[i], gt_label=torch.tensor([i % C]),
                 knn_split='bank' if i < num_bank else 'query',
                 sample_idx=i, prototype_probs=probs[i], prototypes=protos,
                 embedding=torch.randn(D, generator=gen))
            for i in range(len(feats))]


def dump(tmp_path, name, batches, size, **kwargs):
    out = str(tmp_path / 'sub' / f'{name}.pkl')
    metric = METRICS.build(dict(type='DumpPredictions', out_file_path=out,
                                **kwargs))
    metric.dataset_meta = dict(classes=['a', 'b', 'c'])
    for batch in batches:
        metric.process(None, batch)
    assert metric.evaluate(size=size) == {}
    return mmengine.load(out)


def test_records_are_small_ordered_and_predict_the_queries(tmp_path):
    data = samples()
    records = dump(tmp_path, 'plain', [data[:4], data[4:]], len(data), k=3,
                   temperature=0.1)
    assert [r['sample_idx'] for r in records] == list(range(9))
    for record, sample in zip(records, data):
        assert 'prototypes' not in record and 'backbone_feat' not in record
        assert record['gt_label'] == int(sample['gt_label'])
        assert record['knn_split'] == sample['knn_split']
        assert record['prototype'] == int(sample['prototype_probs'].argmax())
        assert record['prototype_prob'] == pytest.approx(
            float(sample['prototype_probs'].max()))
    feats = torch.stack([s['backbone_feat'] for s in data])
    labels = torch.tensor([int(s['gt_label']) for s in data])
    scores = weighted_knn_predict(feats[6:], feats[:6], labels[:6], C, k=3,
                                  temperature=0.1)
    assert all('pred_label' not in r for r in records[:6])
    assert [r['pred_label'] for r in records[6:]] == \
        scores.argmax(1).tolist()
    torch.testing.assert_close(
        torch.stack([r['pred_score'] for r in records[6:]]),
        scores / scores.sum(1, keepdim=True))

    # processed out of order (as ranks' results may come) and with the
    # sampler's padded repeat of sample 0 at the end: the same file
    shuffled = [data[i] for i in (7, 2, 0, 5, 8, 1, 3, 6, 4)]
    again = dump(tmp_path, 'padded', [shuffled[:5], shuffled[5:] + data[:1]],
                 len(data), k=3, temperature=0.1)
    assert len(again) == len(records)
    for a, b in zip(records, again):
        assert set(a) == set(b)
        for key in a:
            if key == 'pred_score':
                torch.testing.assert_close(a[key], b[key])
            else:
                assert a[key] == b[key], key


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match='pkl'):
        METRICS.build(dict(type='DumpPredictions',
                           out_file_path=str(tmp_path / 'p.json')))
    with pytest.raises(ValueError, match='k must be >= 1'):
        METRICS.build(dict(type='DumpPredictions', k=0,
                           out_file_path=str(tmp_path / 'p.pkl')))
