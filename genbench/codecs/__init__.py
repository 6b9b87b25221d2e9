"""The shared encoder-decoders (identity, pca, mlp), fitted once and cached by key."""

from genbench.codecs.autoencoder import AutoEncoder, AutoencoderConfig
from genbench.codecs.cache import cache_key, get_autoencoder

__all__ = [
    "AutoEncoder",
    "AutoencoderConfig",
    "cache_key",
    "get_autoencoder",
]
