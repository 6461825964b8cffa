"""Scoring: investor profiles, hard constraints, value functions, weights and ranking."""

from omw_sites.scoring.engine import evaluate_profile, score_profile, score_sites
from omw_sites.scoring.profiles import Profile, ProfileError, load_profile, load_profiles

__all__ = [
    "Profile",
    "ProfileError",
    "evaluate_profile",
    "load_profile",
    "load_profiles",
    "score_profile",
    "score_sites",
]
