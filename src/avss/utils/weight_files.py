"""One switch for rebuilding a saved model: inside `skip_weight_files()`, constructors do not read the weight
files their config names (a lip-reading checkpoint, a frozen base separator), because the weights loaded next
hold them and the original files need not exist on this machine."""
from __future__ import annotations

import contextlib
import contextvars

_SKIP = contextvars.ContextVar("avss_skip_weight_files", default=False)


def skipping_weight_files() -> bool:
    return _SKIP.get()


@contextlib.contextmanager
def skip_weight_files():
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)
