"""texnet: feed-forward texture networks (Ulyanov et al. 2016) and the Gatys et al. baseline on one perceptual loss."""

import logging
import warnings

__version__ = "0.1.0"


class _NoLightningAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger" line, which every Trainer logs (an advert, not a status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip")


# A texnet run shows texnet's progress, not its dependencies' notices. Neither of these can be fixed in texnet's
# code: Lightning 2.6 logs the tip from Trainer.__init__, and builds torch's deprecated pytree LeafSpec itself.
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_NoLightningAdverts())
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
# model=encoder keeps its frozen VGG in eval mode on purpose (texnet.vgg.VGGFeatures.train); Lightning warns about it.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


def __getattr__(name: str):
    """``texnet.load`` imports torch and the inference code only when first used, so ``import texnet`` stays light."""
    if name == "load":
        from texnet.inference import load

        return load
    raise AttributeError(f"module 'texnet' has no attribute '{name}'")
