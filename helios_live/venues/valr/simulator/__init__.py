"""A local VALR exchange on loopback that replays recorded data (tests, the demo, benchmarks)."""
