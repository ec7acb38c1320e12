# Decoupled iBOT on Fashion-MNIST: the joint twin with both prototype banks
# ([CLS] and patch) swapped for Gaussian-mixture means fitted by online EM
# (arXiv 2510.20108); one OnlineEMHook updates both banks, with the EM
# method of gm_dino_vitt_fmnist.py.
_base_ = ['./ibot_vitt_fmnist.py', './_base_/decoupled_gmm.py']

gmm_cfg = dict(_base_.decoupled_gmm, beta_iters=500, reseed_start=150)
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
