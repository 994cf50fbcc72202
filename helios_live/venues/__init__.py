"""Exchanges Helios talks to, each in its own folder: wire format, clients, and a simulator."""
