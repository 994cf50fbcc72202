"""The live engine: per-pair state, the decision chain, health, control."""
