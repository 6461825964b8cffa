"""Synthetic Warsaw metropolitan region (OMW) written in the real raw-data formats."""

from omw_sites.demo.region import DATA_DATES, GENERATOR_VERSION, build_region

__all__ = ["DATA_DATES", "GENERATOR_VERSION", "build_region"]
