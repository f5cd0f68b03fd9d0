"""carpay: a payment platform for the automotive world on an EVM ledger."""

import os as _os

# py-evm hashes with eth-hash's first backend; pysha3 is several times faster per call than
# pycryptodome's, and keccak is a third of block execution. Must be set before eth imports.
_os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

from carpay.errors import CarpayError  # noqa: E402
from carpay.settings import Settings  # noqa: E402

__all__ = ["CarpayError", "Settings", "__version__"]
__version__ = "0.1.0"
