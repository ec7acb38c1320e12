# Decoupled DINO ResNet-50 on ImageNet-1k: DINO's ResNet-50 recipe
# (dino_resnet50_in1k.py) with the prototype head swapped for online-EM
# Gaussian-mixture means (ours, as gm_dino_vitb_in1k.py).
#   bash tools/dist_train.sh configs/gm_dino_resnet50_in1k.py 8
_base_ = ['./dino_resnet50_in1k.py']

model = dict(
    head=dict(
        _delete_=True,
        type='DecoupledGMMHead',
        in_channels=256,  # equal to neck bottleneck_channels
        num_prototypes=65536,
        loss=dict(type='DINOLoss', student_temp=0.1, teacher_temp=0.04,
                  warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=0,
                  center_momentum=0.9),
        gmm=dict(
            forgetting=0.01,     # eta: rho_k = (1 - eta) ** N_k
            beta_start=0.3,      # annealed E-step: beta 0.3 -> 1
            beta_iters=25020,    # ... over 10 epochs of 2502 iterations
            beta_schedule='cosine',
            min_var=1e-4,        # sigma^2 floor
            init='sample')))     # K pooled teacher embeddings

# no learned prototypes to freeze; one EM step per optimizer step instead
custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=500),
]
