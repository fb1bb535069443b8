"""Clean-room StyleGAN2/3 discriminator and a safe reader for NVIDIA network pickles."""
from .discriminator import Discriminator, DiscriminatorBlock, DiscriminatorEpilogue, discriminator_flops

__all__ = ["Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue", "discriminator_flops"]
