# Decoupled DINO ViT-B/16 on ImageNet-1k: the joint recipe with the
# prototype head swapped for online-EM Gaussian-mixture means.
#   bash tools/dist_train.sh configs/gm_dino_vitb_in1k.py 8
_base_ = ['./dino_vitb_in1k.py']

model = dict(
    head=dict(
        type='DecoupledGMMHead',  # keeps in_channels=256, K=65536, DINO loss
        gmm=dict(
            forgetting=0.01,     # eta: rho_k = (1 - eta) ** N_k
            beta_start=0.3,      # annealed E-step: beta 0.3 -> 1
            beta_iters=12510,    # ... over 10 epochs of 1251 iterations
            beta_schedule='cosine',
            min_var=1e-4,        # sigma^2 floor
            init='sample')))     # K pooled teacher embeddings (k-means++
                                 # seeding of 65536 means is too slow)

custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=500),
]
