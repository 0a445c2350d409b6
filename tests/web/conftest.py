from tests.clinic.support import clinic, fast_hashing, templates

__all__ = ["clinic", "fast_hashing", "templates"]
