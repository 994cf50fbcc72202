"""Data access shared by the batch and live sides: the Parquet lake and market-data sources."""
