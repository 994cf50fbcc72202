"""Surveillance tier: monitors on the clock, security events, their store and the gate step (docs/surveillance.md)."""
