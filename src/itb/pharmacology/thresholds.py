"""The pharmacology's clinical thresholds and defaults, in a module that imports nothing heavy:
the command line's help and the web's forms show them without loading NumPy (issue 13). The
modules that compute with them import them from here."""

from __future__ import annotations

# Fall of the MAS that counts as a response: the CP trial's responder rule, a mean Ashworth fall
# of at least 1.0 (S51). Used as the onset/duration threshold of a bolus (docs/pharmacology.md).
RESPONSE_THRESHOLD_MAS = 1.0  # S51

# Fraction of the maintenance effect whose loss marks the withdrawal risk [R]: half the
# maintenance effect gone. Early withdrawal is a return of spasticity (S54 S55 S56); no source
# gives a figure, so it is a setting.
DEFAULT_WITHDRAWAL_FRACTION = 0.5  # [R]
