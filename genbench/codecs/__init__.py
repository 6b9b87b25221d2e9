"""The shared encoder-decoders (codecs): identity, pca, mlp and plugins, fitted once and cached
by key."""

from genbench.codecs.base import CODECS, AutoEncoder, AutoencoderConfig, register_codec
from genbench.codecs.cache import build_codec, cache_key, get_autoencoder
from genbench.codecs.linear import IdentityCodec, LinearCodec, PCACodec
from genbench.codecs.mlp import MLPCodec

__all__ = [
    "CODECS", "AutoEncoder", "AutoencoderConfig", "IdentityCodec", "LinearCodec", "MLPCodec",
    "PCACodec", "build_codec", "cache_key", "get_autoencoder", "register_codec",
]
