# Decoupled CARP on Fashion-MNIST: the joint twin (carp_vitt_fmnist.py) with
# its prototypes replaced by Gaussian-mixture means fitted by online EM
# (arXiv 2510.20108); the paper's method only, none of our GMM options.
_base_ = ['./carp_vitt_fmnist.py']

model = dict(
    head=dict(
        type='DecoupledGMMHead',  # keeps in_channels and the CARP loss
        num_prototypes=1024,  # as the joint twin
        gmm=dict(
            forgetting=0.01,  # eta: rho_k = (1 - eta) ** N_k
            beta_start=0.3,   # annealed E-step: beta 0.3 -> 1 ...
            beta_iters=500,   # ... over this many EM updates (cosine)
            min_var=1e-4,     # sigma^2 floor
            # uniform on the sphere, like the joint twin's random last layer
            init='uniform')))

# no learned prototypes; one EM step per optimizer step instead
custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=50),
]
