# KoLeo-proto baseline (Govindarajan et al. 2024): the joint DINO head plus
# lambda * KoLeo on its prototypes, the regulariser practitioners use today.
_base_ = ['./dino_vitt_fmnist.py']

model = dict(head=dict(koleo_weight=0.1))  # lambda
