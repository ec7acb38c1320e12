# The paper's decoupled head alone, tiny ViT on Fashion-MNIST: our options
# off (DINO's centred softmax targets), K of the joint twin.
_base_ = ['./dino-gmm_vit-tiny-p8_1xb64-3e_fmnist.py']

model = dict(
    head=dict(
        num_prototypes=1024,  # equal to the joint twin's
        gmm=dict(_delete_=True, beta_iters=1 / 3, **_base_.paper_gmm),
        teacher_targets='softmax',
        loss=dict(teacher_balancing='center')))
