"""Pharmacology of intrathecal baclofen: PK/PD model, exact solutions, population draws,
bolus metrics, withdrawal risk, screening trial and titration advice (docs/pharmacology.md).

Pure core: no clock, disk, network or global random; seeded generators are passed in.
``plots`` is the one adapter (matplotlib) and is not imported here.
"""
