"""Access policy: tiers, limits, tokens and what a caller may see."""
