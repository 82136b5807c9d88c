"""The bases of the models: `Model` for what the API returns, `Body` for what is sent to it."""

from __future__ import annotations

import msgspec


class Model(msgspec.Struct, kw_only=True, rename="camel", gc=False, repr_omit_defaults=True):
    """A decoded API object: snake_case attributes over the API's camelCase names.

    Unknown fields are ignored and every field has a default, so a payload from a newer or older
    page version still decodes. `gc=False` is safe because decoded JSON cannot form cycles, and it
    keeps large pages of leads out of the cyclic garbage collector's way.
    """


class Body(msgspec.Struct, rename="camel", gc=False):
    """A request body: snake_case fields sent as the API's camelCase names, encoded by msgspec.

    Built by the resource methods, which check the values first; never decoded.
    """
