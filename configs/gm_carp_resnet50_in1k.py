# Decoupled CARP ResNet-50 on ImageNet-1k: CARP's recipe
# (carp_resnet50_in1k.py) with its prototypes replaced by online-EM
# Gaussian-mixture means (arXiv 2510.20108), the paper's method only.
#   bash tools/dist_train.sh configs/gm_carp_resnet50_in1k.py 8
_base_ = ['./carp_resnet50_in1k.py']

model = dict(
    head=dict(
        _delete_=True,
        type='DecoupledGMMHead',
        in_channels=256,  # equal to neck bottleneck_channels
        num_prototypes=65536,  # as the joint twin
        loss=dict(type='CARPLoss', partition_size=512),
        gmm=dict(
            forgetting=0.01,   # eta: rho_k = (1 - eta) ** N_k
            beta_start=0.3,    # annealed E-step: beta 0.3 -> 1 ...
            beta_iters=50040,  # ... over 10 epochs of 5004 iterations
            min_var=1e-4,      # sigma^2 floor
            init='sample')))   # K pooled teacher embeddings

# no learned prototypes; one EM step per optimizer step instead
custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=500),
]
