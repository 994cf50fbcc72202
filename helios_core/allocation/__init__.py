"""Tier 5 allocation: target weights, the entry cap, drift rebalancing and attribution (pure)."""
