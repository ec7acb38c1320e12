# The paper's decoupled head alone, DINO ViT-B/16 on ImageNet-1k: our
# options off, means sampled from K pooled teacher embeddings.
_base_ = ['./dino-gmm_vit-base-p16_8xb128-coslr-400e_in1k.py']

model = dict(
    head=dict(
        gmm=dict(_base_.paper_gmm, _delete_=True, init='sample',
                 beta_iters=10 / 400),  # 10 of the 400 epochs
        teacher_targets='softmax',
        loss=dict(teacher_balancing='center')))
