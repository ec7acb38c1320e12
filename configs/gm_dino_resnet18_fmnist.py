# Tiny CPU twin of gm_dino_resnet50_in1k.py: dino_resnet18_fmnist.py with the
# prototype head swapped for online-EM Gaussian-mixture means (the same
# method as gm_dino_vitt_fmnist.py).
_base_ = ['./dino_resnet18_fmnist.py', './_base_/decoupled_gmm.py']

model = dict(
    head=dict(
        _delete_=True,
        type='DecoupledGMMHead',
        in_channels=128,  # equal to neck bottleneck_channels
        num_prototypes=1024,
        loss=dict(type='DINOLoss', student_temp=0.1, teacher_temp=0.04,
                  warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=0,
                  center_momentum=0.9, **_base_.decoupled_loss),
        gmm=dict(_base_.decoupled_gmm, beta_iters=500, reseed_start=150),
        **_base_.decoupled_targets))

custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=50),
]
