# Decoupled iBOT ViT-B/16 on ImageNet-1k: the joint recipe with both
# prototype banks ([CLS] and patch) swapped for online-EM Gaussian-mixture
# means (arXiv 2510.20108); one OnlineEMHook updates both banks. Both run
# the EM method of gm_dino_vitb_in1k.py (our targets / teacher options are
# DINOLoss's and are not measured on iBOT).
#   bash tools/dist_train.sh configs/gm_ibot_vitb_in1k.py 8
_base_ = ['./ibot_vitb_in1k.py', './_base_/decoupled_gmm.py']

gmm_cfg = dict(_base_.decoupled_gmm,
               beta_iters=12510,     # 10 epochs of 1,251 iterations
               reseed_start=12510)   # the end of the 10-epoch lr warm-up
model = dict(
    # both keep in_channels=256, K=8192 and their loss
    head=dict(type='DecoupledGMMHead', gmm=gmm_cfg),
    # fitted to the teacher's masked-patch embeddings: ~15 % of the 196
    # patches of each global view on average, ~7.5k rows per GPU and step
    patch_head=dict(type='DecoupledGMMHead', gmm=gmm_cfg))

custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=500),
]
