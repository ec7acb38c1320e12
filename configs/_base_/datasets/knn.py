# The k-NN test of a pretraining config (tools/test.py): a bank and
# queries embedded by the network predict() uses, prototype diversity /
# usage and weighted k-NN; a dataset base adds the bank and the queries.
test_dataloader = dict(
    batch_size=256,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='KNNDataset'))
test_evaluator = [
    dict(type='PrototypeDiversityMetric'),
    dict(type='KNNAccuracy', k=20, temperature=0.07),
]
test_cfg = dict(type='TestLoop')
