"""Pure core of Helios: domain types, timeframes, candles. No I/O, no wall clock."""
