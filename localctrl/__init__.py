"""localctrl: local control of text-to-image diffusion models (masked T2I-Adapters with a z0 edge loss)."""

__version__ = "0.1.0"
