"""A dose in words and units, as a confirmation shows it before a send (H32).

A number read aloud in words ("two hundred thirty micrograms per day") does not look like its
tenfold neighbour the way "230" and "2300" do; the confirmation gives both, with the units.
"""

from __future__ import annotations

from itb.programmer.programming import ProgramReview


def dose_sentence(review: ProgramReview) -> str:
    """The dose to be sent, in words and units, as the confirmation shows it."""
    dose_ug = review.new_daily_dose_ug
    words = (
        f"{dose_ug:g} µg/day ({number_words(dose_ug)} micrograms per day), "
        f"{review.new_volume_per_day_ml:.4g} mL/day at {review.concentration_ug_per_ml:g} µg/mL"
    )
    if review.old_daily_dose_ug is not None:
        words += f"; now {review.old_daily_dose_ug:g} µg/day"
        if review.change_percent is not None:
            words += f" ({review.change_percent:+.1f}%)"
    return words


_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(value: float) -> str:
    """A dose in English words, to two decimals: 230 -> "two hundred thirty", 0.5 -> "zero
    point five" (so that a misplaced decimal point reads differently aloud)."""
    cents = round(abs(value) * 100)
    whole, fraction = divmod(cents, 100)
    words = _whole_words(whole)
    if fraction:
        digits = f"{fraction:02d}".rstrip("0")
        words += " point " + " ".join(_ONES[int(d)] for d in digits)
    return words


def _whole_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {_whole_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{_whole_words(thousands)} thousand" + (f" {_whole_words(rest)}" if rest else "")
