# Decoupled DINO ResNet-50 on ImageNet-1k: DINO's ResNet-50 recipe with the
# prototype head swapped for Gaussian-mixture means fitted by online EM.
_base_ = [
    './dino_resnet50_8xb64-coslr-100e_in1k.py',
    '../_base_/models/decoupled_gmm.py',
]

model = dict(head=dict(
    _base_.decoupled_head,
    _delete_=True,  # DecoupledGMMHead has no norm_last_layer
    in_channels=256,  # equal to neck bottleneck_channels
    num_prototypes=65536,
    loss=dict(_base_.model.head.loss, **_base_.decoupled_head.loss),
    gmm=dict(_base_.decoupled_gmm,
             beta_iters=10 / 100,     # 10 of the 100 epochs
             # reseed_start: the end of the lr warm-up
             maintenance=dict(_base_.decoupled_maintenance,
                              reseed_start=10 / 100))))

custom_hooks = [
    _base_.em_hook,
    dict(type='PrototypeMonitorHook', interval=500),
]
