"""Per-site measurements: distances, utilities, planning, constraints and terrain."""

from omw_sites.criteria.measure import measure_sites

__all__ = ["measure_sites"]
