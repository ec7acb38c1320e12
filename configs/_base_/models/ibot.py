# iBOT's additions to a DINO model (Zhou et al. 2022, main_ibot.py):
# masked-patch self-distillation through a patch head.
ibot = dict(
    type='IBOT',
    mask_ratio=(0.1, 0.5),  # iBOT: --pred_ratio 0 0.3 --pred_ratio_var 0 0.2
    mask_prob=0.5,          # iBOT: a global view is masked w.p. 0.5
    patch_loss_weight=1.0)  # iBOT: --lambda2 1.0
patch_head = dict(
    type='DINOHead',
    loss=dict(type='IBOTPatchLoss', student_temp=0.1, teacher_temp=0.07,
              warmup_teacher_temp=0.04, center_momentum=0.9))
