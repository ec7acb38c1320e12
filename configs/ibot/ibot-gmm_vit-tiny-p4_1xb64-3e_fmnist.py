# Decoupled iBOT, tiny ViT on Fashion-MNIST: the joint twin with both
# prototype banks ([CLS] and patch) swapped for Gaussian-mixture means; one
# OnlineEMHook updates both.
_base_ = [
    './ibot_vit-tiny-p4_1xb64-3e_fmnist.py',
    '../_base_/models/decoupled_gmm.py',
]

gmm = dict(type='DecoupledGMMHead',  # keeps in_channels, K and the loss
           gmm=dict(_base_.decoupled_gmm, beta_iters=1 / 3,
                    maintenance=dict(_base_.decoupled_maintenance,
                                     reseed_start=0.1)))
model = dict(head=gmm, patch_head=gmm)  # patches: the masked ones

custom_hooks = [
    _base_.em_hook,
    dict(type='PrototypeMonitorHook', interval=20),
]
