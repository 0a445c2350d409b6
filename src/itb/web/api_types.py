"""Strict JSON types for the API's request bodies: a number is a number, and a finite one.

Theory of operation: pydantic's lax mode turns JSON ``true`` into 1.0 and ``"5"`` into 5.0, and
Python's JSON reader takes ``NaN`` and ``Infinity``. A refill volume of ``true`` was sent to a pump
as 1.0 mL. Every numeric field of a request body is therefore one of the types below: strict
(an int or a float; never a bool or a string) and finite. The clinical range of each field is
checked by the one home of its rule (``PumpModel.check_fill``, ``BACLOFEN.check_concentration``,
the screening and patient services), which answers an InputError naming the field and the
allowed range: the API adds no range of its own, so the two can never disagree.

The HTML forms keep their own parsing (``itb.web.pages.forms``): a form field is text.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

DB_ID_MAX = 2**31 - 1

# A JSON number (int or float, never true/false, never a numeric string), finite. Its clinical
# range is checked by the rule's one home (a volume by PumpModel.check_fill, a concentration by
# BACLOFEN.check_concentration...), which names the allowed range.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]

# A whole number (never true/false, never a string); a database id is 1 to 2**31 - 1.
WholeNumber = Annotated[int, Strict()]
DbId = Annotated[int, Strict(), Field(ge=1, le=DB_ID_MAX)]

# true or false only (lax mode takes 1, "yes" and "on" as true).
Flag = Annotated[bool, Strict()]
