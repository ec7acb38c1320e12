# Decoupled DINO ResNet-50 on ImageNet-1k: DINO's ResNet-50 recipe
# (dino_resnet50_in1k.py) with the prototype head swapped for online-EM
# Gaussian-mixture means (the same method as gm_dino_vitb_in1k.py).
#   bash tools/dist_train.sh configs/gm_dino_resnet50_in1k.py 8
_base_ = ['./dino_resnet50_in1k.py', './_base_/decoupled_gmm.py']

model = dict(
    head=dict(
        _delete_=True,
        type='DecoupledGMMHead',
        in_channels=256,  # equal to neck bottleneck_channels
        num_prototypes=65536,
        loss=dict(type='DINOLoss', student_temp=0.1, teacher_temp=0.04,
                  warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=0,
                  center_momentum=0.9, **_base_.decoupled_loss),
        gmm=dict(_base_.decoupled_gmm,
                 beta_iters=25020,     # 10 epochs of 2,502 iterations
                 reseed_start=25020),  # the end of the 10-epoch lr warm-up
        **_base_.decoupled_targets))

# no learned prototypes to freeze; one EM step per optimizer step instead
custom_hooks = [
    dict(type='OnlineEMHook', interval=1),
    dict(type='PrototypeMonitorHook', interval=500),
]
