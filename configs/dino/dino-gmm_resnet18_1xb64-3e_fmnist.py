# Decoupled DINO ResNet-18 on Fashion-MNIST: the joint twin with its
# prototype head swapped for Gaussian-mixture means fitted by online EM.
_base_ = [
    './dino_resnet18_1xb64-3e_fmnist.py',
    '../_base_/models/decoupled_gmm.py',
]

model = dict(head=dict(
    _base_.decoupled_head,
    _delete_=True,  # DecoupledGMMHead has no norm_last_layer
    in_channels=_base_.bottleneck,  # equal to neck bottleneck_channels
    num_prototypes=1024,
    loss=dict(_base_.model.head.loss, **_base_.decoupled_head.loss),
    gmm=dict(_base_.decoupled_gmm, beta_iters=1 / 3,
             maintenance=dict(_base_.decoupled_maintenance,
                              reseed_start=0.1))))

custom_hooks = [
    _base_.em_hook,
    dict(type='PrototypeMonitorHook', interval=50),
]
