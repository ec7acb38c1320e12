# Decoupled CARP ResNet-50 on ImageNet-1k: the joint recipe with its
# prototypes replaced by Gaussian-mixture means fitted by online EM, the
# paper's method only (none of our options).
_base_ = [
    './carp_resnet50_8xb32-amp-coslr-100e_in1k.py',
    '../_base_/models/decoupled_gmm.py',
]

model = dict(head=dict(
    _delete_=True,  # DecoupledGMMHead has no norm_last_layer
    type='DecoupledGMMHead',
    in_channels=256,  # equal to neck bottleneck_channels
    num_prototypes=65536,  # as the joint twin
    loss=_base_.model.head.loss,
    gmm=dict(_base_.paper_gmm,
             beta_iters=10 / 100,  # 10 of the 100 epochs
             init='sample')))   # K pooled teacher embeddings

custom_hooks = [
    _base_.em_hook,
    dict(type='PrototypeMonitorHook', interval=500),
]
