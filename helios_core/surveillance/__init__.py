"""Surveillance detectors (docs/surveillance.md): pure, time as an argument, each with a streaming
implementation and a batch twin that agree."""
