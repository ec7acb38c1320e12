# The product's name for the decoupled DINO ViT-B/16 ImageNet-1k recipe.
_base_ = ['./dino/dino-gmm_vit-base-p16_8xb128-coslr-400e_in1k.py']
