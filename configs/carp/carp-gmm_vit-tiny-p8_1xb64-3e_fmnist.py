# Decoupled CARP, tiny ViT on Fashion-MNIST: the joint twin with its
# prototypes replaced by Gaussian-mixture means fitted by online EM, the
# paper's method only (none of our options; chosen by the seed study,
# docs/results.md "CARP, joint and decoupled").
_base_ = [
    './carp_vit-tiny-p8_1xb64-3e_fmnist.py',
    '../_base_/models/decoupled_gmm.py',
]

model = dict(head=dict(
    type='DecoupledGMMHead',  # keeps in_channels and the CARP loss
    num_prototypes=1024,  # as the joint twin
    gmm=dict(_base_.paper_gmm, beta_iters=1 / 3,
             init='sample')))  # K pooled teacher embeddings (8 steps)

custom_hooks = [
    _base_.em_hook,
    dict(type='PrototypeMonitorHook', interval=50),
]
