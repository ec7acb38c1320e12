# DINO: a student and its EMA teacher (backbone, DINONeck MLP), DINOHead's
# prototypes and DINOLoss; configs add the backbone and the sizes.
model = dict(
    type='DINO',
    base_momentum=0.004,  # teacher momentum 0.996 -> 1 (cosine)
    num_global_views=2,  # equal to the data's num_crops[0]
    neck=dict(type='DINONeck'),
    head=dict(
        type='DINOHead',
        loss=dict(type='DINOLoss', student_temp=0.1, teacher_temp=0.07,
                  warmup_teacher_temp=0.04, center_momentum=0.9)))
