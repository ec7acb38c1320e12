# Decoupled DINO ViT-B/16 on ImageNet-1k: the joint recipe with the
# prototype head swapped for Gaussian-mixture means fitted by online EM.
_base_ = [
    './dino_vit-base-p16_8xb128-coslr-400e_in1k.py',
    '../_base_/models/decoupled_gmm.py',
]

model = dict(head=dict(
    _base_.decoupled_head,  # keeps in_channels, K and the DINO loss
    gmm=dict(_base_.decoupled_gmm,
             beta_iters=10 / 400,     # 10 of the 400 epochs
             # reseed_start: the end of the lr warm-up
             maintenance=dict(_base_.decoupled_maintenance,
                              reseed_start=10 / 400))))

custom_hooks = [
    _base_.em_hook,
    dict(type='PrototypeMonitorHook', interval=500),
]
