# Decoupled iBOT ViT-B/16 on ImageNet-1k: the joint recipe with both
# prototype banks ([CLS] and patch) swapped for Gaussian-mixture means; one
# OnlineEMHook updates both.
_base_ = [
    './ibot_vit-base-p16_8xb128-coslr-400e_in1k.py',
    '../_base_/models/decoupled_gmm.py',
]

gmm = dict(type='DecoupledGMMHead',  # keeps in_channels, K and the loss
           gmm=dict(_base_.decoupled_gmm,
                    beta_iters=10 / 400,     # 10 of the 400 epochs
                    # reseed_start: the end of the lr warm-up
                    maintenance=dict(_base_.decoupled_maintenance,
                                     reseed_start=10 / 400)))
model = dict(head=gmm, patch_head=gmm)  # patches: the masked ones

custom_hooks = [
    _base_.em_hook,
    dict(type='PrototypeMonitorHook', interval=500),
]
