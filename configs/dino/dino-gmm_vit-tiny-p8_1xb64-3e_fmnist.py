# Decoupled DINO, tiny ViT on Fashion-MNIST: the joint twin with its
# prototype head swapped for Gaussian-mixture means fitted by online EM.
_base_ = [
    './dino_vit-tiny-p8_1xb64-3e_fmnist.py',
    '../_base_/models/decoupled_gmm.py',
]

model = dict(head=dict(
    _base_.decoupled_head,  # keeps in_channels and the DINO loss
    num_prototypes=256,
    gmm=dict(_base_.decoupled_gmm,
             beta_iters=1 / 3,    # of training: 500 of the demo's 1,500
             # reseed_start: 150 of 1,500: the lr warm-up's end
             maintenance=dict(_base_.decoupled_maintenance,
                              reseed_start=0.1))))

custom_hooks = [
    _base_.em_hook,
    dict(type='PrototypeMonitorHook', interval=50),
]
