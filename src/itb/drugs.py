"""The drug library: intrathecal baclofen concentrations, dose limits and stability.

Sources are the S-numbers of ``docs/domain.md``. [R] marks a default not confirmed by a source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itb.errors import InputError


class UnknownDrugError(InputError):
    """A drug or concentration that is not in the library."""

    def __init__(self, message: str, field: str = "concentration_ug_per_ml") -> None:
        super().__init__(field, message, message)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (UnknownDrugError, (str(self), self.field))


@dataclass(frozen=True, slots=True)
class Drug:
    name: str
    # Marketed intrathecal concentrations, µg/mL (S42 S43 S44).
    concentrations_ug_per_ml: tuple[float, ...]
    # Daily dose above which the label reports limited experience: a warning level (S46 S52).
    warning_daily_dose_ug: float
    # Highest maintenance dose reported (S25: spinal 12 to 2000 µg/day): the absolute cap.
    absolute_max_daily_dose_ug: float
    # Lowest daily dose a program may ask for (S25: smallest reported maintenance dose 12 µg/day,
    # children 24): below it a program is almost certainly a typo. [R] as a floor.
    absolute_min_daily_dose_ug: float
    # Days the drug may stay in the pump reservoir. Not confirmed by a source [R]: 180 days,
    # matching the longest refill intervals clinics report (S24 S25: 1 to 6 months).
    stability_days: float
    # Screening bolus sequence, µg (S45 S46 S48).
    screening_doses_ug: tuple[float, ...]

    def check_concentration(self, concentration_ug_per_ml: float) -> float:
        if concentration_ug_per_ml not in self.concentrations_ug_per_ml:
            allowed = ", ".join(f"{c:g}" for c in self.concentrations_ug_per_ml)
            raise UnknownDrugError(
                f"concentration_ug_per_ml={concentration_ug_per_ml:g} is not a marketed "
                f"{self.name} concentration; allowed: {allowed} µg/mL"
            )
        return concentration_ug_per_ml


BACLOFEN = Drug(
    name="baclofen",
    concentrations_ug_per_ml=(50.0, 500.0, 1000.0, 2000.0),
    warning_daily_dose_ug=1000.0,
    absolute_max_daily_dose_ug=2000.0,
    absolute_min_daily_dose_ug=10.0,
    stability_days=180.0,
    screening_doses_ug=(50.0, 75.0, 100.0),
)

DRUGS: dict[str, Drug] = {BACLOFEN.name: BACLOFEN}

# The screening trial doses the programmer accepts: 50, 75 and 100 µg (S45 S46), and 25 µg for
# very small children (S48).
SCREENING_TRIAL_DOSES_UG: tuple[float, ...] = (25.0, *BACLOFEN.screening_doses_ug)


def drug(name: str) -> Drug:
    try:
        return DRUGS[name]
    except KeyError:
        raise UnknownDrugError(
            f"drug {name!r} is not in the library; known: {sorted(DRUGS)}", "drug"
        ) from None
