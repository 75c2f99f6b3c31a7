"""texnet: feed-forward texture networks (Ulyanov et al. 2016) and the Gatys et al. baseline on one perceptual loss."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``texnet.load`` imports torch and the inference code only when first used, so ``import texnet`` stays light."""
    if name == "load":
        from texnet.inference import load

        return load
    raise AttributeError(f"module 'texnet' has no attribute '{name}'")
