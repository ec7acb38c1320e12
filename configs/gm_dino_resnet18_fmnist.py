# Tiny CPU twin of gm_dino_resnet50_in1k.py: dino_resnet18_fmnist.py with the
# prototype head swapped for online-EM Gaussian-mixture means (ours, as
# gm_dino_vitt_fmnist.py).
_base_ = ['./dino_resnet18_fmnist.py']

model = dict(
    head=dict(
        _delete_=True,
        type='DecoupledGMMHead',
        in_channels=128,  # equal to neck bottleneck_channels
        num_prototypes=1024,
        loss=dict(type='DINOLoss', student_temp=0.1, teacher_temp=0.04,
                  warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=0,
                  center_momentum=0.9),
        gmm=dict(forgetting=0.01, beta_start=0.3, beta_iters=500,
                 min_var=1e-4, init='uniform')))

custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=50),
]
