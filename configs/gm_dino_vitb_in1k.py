# Decoupled DINO ViT-B/16 on ImageNet-1k: the joint recipe with the
# prototype head swapped for online-EM Gaussian-mixture means, the same
# method as the Fashion-MNIST default (configs/_base_/decoupled_gmm.py).
#   bash tools/dist_train.sh configs/gm_dino_vitb_in1k.py 8
_base_ = ['./dino_vitb_in1k.py', './_base_/decoupled_gmm.py']

model = dict(
    head=dict(
        type='DecoupledGMMHead',  # keeps in_channels=256, K=65536, DINO loss
        gmm=dict(_base_.decoupled_gmm,
                 beta_iters=12510,     # 10 epochs of 1,251 iterations
                 reseed_start=12510),  # the end of the 10-epoch lr warm-up
        **_base_.decoupled_targets,
        loss=_base_.decoupled_loss))

custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=500),
]
