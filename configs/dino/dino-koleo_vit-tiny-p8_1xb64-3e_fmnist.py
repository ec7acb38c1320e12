# KoLeo-proto baseline (Govindarajan et al. 2024): the joint DINO head plus
# lambda * KoLeo on its prototypes.
_base_ = ['./dino_vit-tiny-p8_1xb64-3e_fmnist.py']

model = dict(head=dict(koleo_weight=0.1))  # lambda
