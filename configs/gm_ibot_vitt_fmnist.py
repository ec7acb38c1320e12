# Decoupled iBOT on Fashion-MNIST: the joint twin with both prototype banks
# ([CLS] and patch) swapped for Gaussian-mixture means fitted by online EM
# (arXiv 2510.20108); one OnlineEMHook updates both banks.
_base_ = ['./ibot_vitt_fmnist.py']

gmm_cfg = dict(
    forgetting=0.01,     # eta: rho_k = (1 - eta) ** N_k
    beta_start=0.3,      # annealed E-step: beta 0.3 -> 1
    beta_iters=500,      # ... over this many EM updates (cosine)
    beta_schedule='cosine',
    min_var=1e-4,        # sigma^2 floor
    init='kmeans++')     # k-means++ on the first K teacher embeddings
model = dict(
    # both keep in_channels, K and their loss (DINOLoss / IBOTPatchLoss)
    head=dict(type='DecoupledGMMHead', gmm=gmm_cfg),
    # the patch bank is fitted to the teacher's masked-patch embeddings
    patch_head=dict(type='DecoupledGMMHead', gmm=gmm_cfg))

# no learned prototypes to freeze; one EM step per optimizer step instead
custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=20),
]
