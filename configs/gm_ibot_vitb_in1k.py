# Decoupled iBOT ViT-B/16 on ImageNet-1k: the joint recipe with both
# prototype banks ([CLS] and patch) swapped for online-EM Gaussian-mixture
# means (arXiv 2510.20108); one OnlineEMHook updates both banks.
#   bash tools/dist_train.sh configs/gm_ibot_vitb_in1k.py 8
_base_ = ['./ibot_vitb_in1k.py']

gmm_cfg = dict(
    forgetting=0.01,     # eta: rho_k = (1 - eta) ** N_k
    beta_start=0.3,      # annealed E-step: beta 0.3 -> 1
    beta_iters=12510,    # ... over 10 epochs of 1251 iterations
    beta_schedule='cosine',
    min_var=1e-4,        # sigma^2 floor
    init='sample')       # K pooled teacher embeddings (k-means++ too slow at K=8192+)
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
