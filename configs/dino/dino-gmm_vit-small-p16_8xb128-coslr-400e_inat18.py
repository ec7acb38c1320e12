# Decoupled DINO ViT-S/16 on iNaturalist 2018: the ImageNet-1k recipe on its
# training set; k-NN and prototype diversity per head / medium / tail group.
_base_ = [
    './dino-gmm_vit-small-p16_8xb128-coslr-400e_in1k.py',
    '../_base_/datasets/inat2018.py',
]

train_dataloader = dict(dataset=dict(
    _base_.inat2018_train, _delete_=True,
    pipeline=_base_.train_pipelines['dino']))
test_dataloader = dict(dataset=dict(
    bank=dict(_base_.inat2018_train, _delete_=True),
    query=dict(_base_.inat2018_val, _delete_=True)))
