"""texnet: feed-forward texture networks (Ulyanov et al. 2016) and the Gatys et al. baseline on one perceptual loss."""

__version__ = "0.1.0"
