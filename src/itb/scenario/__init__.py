"""Scenarios: a pump's life described in TOML (:mod:`~itb.scenario.format`) and run against the
real firmware (:mod:`~itb.scenario.runner`). An adapter: it reads files; the firmware does not
import it."""

from itb.scenario.format import Event, Scenario, ScenarioError, load_scenario

__all__ = ["Event", "Scenario", "ScenarioError", "load_scenario"]
