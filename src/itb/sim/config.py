"""The cohort description (TOML): population, pumps, clinic policy, fault rates, horizon, seed.

Documented in docs/sim.md. Parsing is strict: an unknown key or a value out of range is an
error naming the field. Sources are the S-numbers of docs/domain.md; [R] marks a default not
confirmed by a source.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from itb.errors import InputError
from itb.guardrails import DEFAULT_LOW_RESERVOIR_ALARM_ML, LOW_RESERVOIR_ALARM
from itb.pump.hardware import pump_model
from itb.tomlfile import describe, read_toml


class CohortError(InputError):
    """A cohort file that cannot be run; the message names the field."""

    def __init__(self, message: str, field: str = "cohort") -> None:
        super().__init__(field, message, message)

    def __reduce__(self) -> tuple[type[CohortError], tuple[str, str]]:
        return (CohortError, (str(self), self.field))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CohortSection(_Strict):
    patients: int = Field(default=1000, ge=1, le=1_000_000)
    years: float = Field(default=10.0, gt=0.0, le=50.0)
    seed: int = Field(default=0, ge=0)
    start: datetime = datetime(2027, 1, 4, 8, 0)


class PopulationSection(_Strict):
    # Share of patients whose spasticity is of spinal origin (the rest cerebral) [R].
    spinal_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    age_min_years: float = Field(default=4.0, ge=0.0, le=100.0)
    age_max_years: float = Field(default=70.0, ge=0.0, le=100.0)
    # Maintenance doses (S25): spinal 300 to 800 µg/day, cerebral 90 to 703, under 12 years
    # mean 274 (24 to 1199). Read as the 10th to 90th percentiles of a log-normal [R].
    spinal_dose_p10_ug_per_day: float = Field(default=300.0, gt=0.0)
    spinal_dose_p90_ug_per_day: float = Field(default=800.0, gt=0.0)
    cerebral_dose_p10_ug_per_day: float = Field(default=90.0, gt=0.0)
    cerebral_dose_p90_ug_per_day: float = Field(default=703.0, gt=0.0)
    child_dose_p10_ug_per_day: float = Field(default=100.0, gt=0.0)
    child_dose_p90_ug_per_day: float = Field(default=600.0, gt=0.0)
    # Share on a flexible day/night schedule rather than a simple continuous rate [R] (S15 S67).
    flex_fraction: float = Field(default=0.3, ge=0.0, le=1.0)


class PumpsSection(_Strict):
    # Pump models and their shares; the shares are normalised.
    models: dict[str, float] = {"peristaltic-20": 0.5, "peristaltic-40": 0.5}
    low_reservoir_alarm_ml: float = Field(
        default=DEFAULT_LOW_RESERVOIR_ALARM_ML,
        ge=LOW_RESERVOIR_ALARM.absolute_min,
        le=LOW_RESERVOIR_ALARM.absolute_max,
    )
    # The clinic picks the lowest concentration that gives at least this refill interval [R].
    target_refill_interval_days: float = Field(default=60.0, ge=7.0, le=180.0)
    # Each pump's real flow error is normal with this SD as a share of the model's accuracy
    # band (S9: ±14.5%), clipped to the band [R]: most pumps sit well inside it.
    flow_error_sd_of_band: float = Field(default=1.0 / 3.0, ge=0.0, le=1.0)

    @field_validator("models")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one pump model")
        for name, share in value.items():
            pump_model(name)
            if share < 0.0:
                raise ValueError(f"share of {name} must be 0 or more")
        if sum(value.values()) <= 0.0:
            raise ValueError("the shares must add up to more than 0")
        return value


class PolicySection(_Strict):
    refill_margin_days: float = Field(default=14.0, ge=0.0, le=30.0)
    late_visit_days_mean: float = Field(default=2.0, ge=0.0, le=60.0)
    missed_visit_rate: float = Field(default=0.02, ge=0.0, lt=1.0)
    rebook_days: float = Field(default=7.0, gt=0.0, le=60.0)
    # Days from the ERI alarm to the replacement surgery; EOS comes 90 days after ERI (S3 S21).
    replacement_days_after_eri: float = Field(default=30.0, ge=0.0, le=365.0)


class FaultsSection(_Strict):
    # Events per patient-year [R]: catheter problems are the commonest ITB complication; a few
    # percent of patients a year is the order the literature reports.
    catheter_occlusion_per_year: float = Field(default=0.03, ge=0.0, le=10.0)
    motor_stall_per_year: float = Field(default=0.01, ge=0.0, le=10.0)
    # Days from a catheter fault to its repair: withdrawal brings the patient in [R].
    catheter_repair_days_mean: float = Field(default=3.0, ge=0.0, le=60.0)
    # Motor stall recovery, uniform in this range (S19 S23: 2 to 24 h).
    stall_recovery_h_min: float = Field(default=2.0, gt=0.0)
    stall_recovery_h_max: float = Field(default=24.0, gt=0.0)
    # The 2011 reduced-battery-performance advisory's failure modes (S5 S7), events per
    # patient-year [R]: the maker calls them low in occurrence; a few per thousand pump-years is
    # the order assumed here, to be replaced by the advisory's own rates.
    low_battery_reset_per_year: float = Field(default=0.002, ge=0.0, le=10.0)
    premature_eri_per_year: float = Field(default=0.002, ge=0.0, le=10.0)
    premature_eos_per_year: float = Field(default=0.001, ge=0.0, le=10.0)
    # Days from a low battery reset's or premature EOS's critical alarm to the visit that
    # answers it (reprogram, or replace a pump that stopped) [R].
    critical_alarm_response_days_mean: float = Field(default=1.0, ge=0.0, le=60.0)
    # Days from any of the three to the replacement, which the maker advises as soon as
    # possible (S5) [R].
    battery_fault_replacement_days_mean: float = Field(default=14.0, ge=0.0, le=365.0)


class PharmacologySection(_Strict):
    enabled: bool = True
    # Share of the maintenance effect lost that counts as withdrawal (docs/pharmacology.md).
    withdrawal_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)


class CohortConfig(_Strict):
    cohort: CohortSection = Field(default_factory=CohortSection)
    population: PopulationSection = Field(default_factory=PopulationSection)
    pumps: PumpsSection = Field(default_factory=PumpsSection)
    policy: PolicySection = Field(default_factory=PolicySection)
    faults: FaultsSection = Field(default_factory=FaultsSection)
    pharmacology: PharmacologySection = Field(default_factory=PharmacologySection)

    def with_overrides(
        self, patients: int | None = None, years: float | None = None, seed: int | None = None
    ) -> CohortConfig:
        cohort = self.cohort.model_dump()
        for key, value in (("patients", patients), ("years", years), ("seed", seed)):
            if value is not None:
                cohort[key] = value
        return parse_cohort({**self.model_dump(), "cohort": cohort})


def parse_cohort(data: dict[str, Any]) -> CohortConfig:
    try:
        return CohortConfig.model_validate(data)
    except ValidationError as err:
        raise CohortError(describe(err, "cohort")) from None


def load_cohort(path: Path | str) -> CohortConfig:
    return parse_cohort(read_toml(Path(path), CohortError, "cohort"))
