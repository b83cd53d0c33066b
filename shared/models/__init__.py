"""Networks: ViT codec, denoising U-Net, classifiers. Math lives in shared.diffusion/channel."""
