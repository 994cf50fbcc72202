"""VALR: the trade WebSocket's wire format and client, the public REST API, and a local
simulator that speaks both."""
