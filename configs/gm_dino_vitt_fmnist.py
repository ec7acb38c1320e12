# Decoupled DINO on Fashion-MNIST: the joint twin with its prototype head
# swapped for Gaussian-mixture means fitted by online EM (arXiv 2510.20108).
_base_ = ['./dino_vitt_fmnist.py']

model = dict(
    head=dict(
        type='DecoupledGMMHead',  # keeps in_channels, K and the DINO loss
        gmm=dict(
            forgetting=0.01,     # eta: rho_k = (1 - eta) ** N_k
            beta_start=0.3,      # annealed E-step: beta 0.3 -> 1
            beta_iters=500,      # ... over this many EM updates (cosine)
            beta_schedule='cosine',
            min_var=1e-4,        # sigma^2 floor
            # uniform on the sphere, like the baseline's random last layer:
            # seeding from the untrained encoder's embeddings (k-means++)
            # would start all K means in the small cap those occupy.
            init='uniform')))

# no learned prototypes to freeze; one EM step per optimizer step instead
custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=50),
]
