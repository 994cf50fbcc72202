"""Tier 5 allocation in the live service: what it reads and computes from the ledger and the lake."""
