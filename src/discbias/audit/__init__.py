"""Audit any StyleGAN-family discriminator on any labelled image set (``discbias audit``)."""
