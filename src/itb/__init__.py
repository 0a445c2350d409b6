"""OpenITB: a reference implementation and simulator of intrathecal baclofen (ITB) therapy.

Not a medical device. See README.md.
"""

__version__ = "0.1.0"
