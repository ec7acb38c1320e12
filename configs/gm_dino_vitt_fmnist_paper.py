# The paper's decoupled head alone on Fashion-MNIST: gm_dino_vitt_fmnist.py
# with our options off (DINO's centred softmax targets, K of the joint twin).
_base_ = ['./gm_dino_vitt_fmnist.py']

model = dict(
    head=dict(
        num_prototypes=1024,  # equal to dino_vitt_fmnist.py
        gmm=dict(_delete_=True, beta_iters=500, **_base_.paper_gmm),
        teacher_targets='softmax',
        loss=dict(teacher_balancing='center')))
