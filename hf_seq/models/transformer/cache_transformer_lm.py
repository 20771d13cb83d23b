"""The cache under the name the installed transformers gives it, for the Transformer family.

generate() passes and reads the cache as `cache` from transformers 5.24 on, as `past_key_values` before. The family's
forwards take `cache` and accept the other names too. This folder ships alone as remote code, so these helpers are a
copy of the recurrent family's (`hf_seq/models/recurrent/cache_recurrent.py`); a test keeps the copies equal.
"""

import functools

from transformers.generation.utils import ALL_CACHE_NAMES
from transformers.utils import logging


logger = logging.get_logger(__name__)

# Copied from hf_seq.models.recurrent.cache_recurrent.CACHE_NAME
# The name under which the installed transformers passes the cache to `forward` and reads it from the outputs:
# generate()'s own list of cache names puts it first ("cache" from 5.24, "past_key_values" before).
CACHE_NAME = ALL_CACHE_NAMES[0]
# Copied from hf_seq.models.recurrent.cache_recurrent.CACHE_ALIASES
# Every other name transformers has given a cache (Mamba's `cache_params`, RWKV's `state`, XLNet's `mems`, ...).
CACHE_ALIASES = ("past_key_values", "cache_params", "state", "mems", "past_buckets_states")


# Copied from hf_seq.models.recurrent.cache_recurrent.accepts_cache_aliases
def accepts_cache_aliases(forward):
    """Decorate a `forward(..., cache=None, ...)` so that it also takes the cache under transformers' other names.

    A cache passed under any name reaches `cache`; it is never dropped. Passing it twice is an error; passing it under
    a name that the installed transformers calls deprecated warns once, as transformers' own models do.
    """

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        for alias in CACHE_ALIASES:
            if alias not in kwargs:
                continue
            value = kwargs.pop(alias)
            if value is None:
                continue
            if kwargs.get("cache") is not None:
                raise ValueError(f"The cache was passed twice, as `cache` and as `{alias}`: pass it once, as `cache`.")
            if alias != CACHE_NAME:
                logger.warning_once(f"`{alias}` is deprecated for this model: pass the cache as `cache`.")
            kwargs["cache"] = value
        return forward(self, *args, **kwargs)

    return wrapper


# Copied from hf_seq.models.recurrent.cache_recurrent.cache_keyword
def cache_keyword(cache):
    """The cache as a keyword argument under the installed transformers' name for it, for its output classes and
    functions (`BaseModelOutputWithPast(cache=...)` from 5.24, `past_key_values=...` before)."""
    return {CACHE_NAME: cache}


# Copied from hf_seq.models.recurrent.cache_recurrent.cache_of
def cache_of(outputs):
    """The cache a forward returned, whatever the installed transformers calls it (`outputs.cache` from 5.24)."""
    return getattr(outputs, CACHE_NAME, None)
