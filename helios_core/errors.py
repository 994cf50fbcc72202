"""A small semantic error hierarchy shared by every Helios package.

Operational callers catch `TemporaryError` to retry, everything else is final.
"""


class HeliosError(Exception):
    """Base of every error Helios raises on purpose."""


class ConfigurationError(HeliosError, ValueError):
    """Settings are missing or invalid; fix the configuration, retrying will not help."""


class DataValidationError(HeliosError, ValueError):
    """Input data broke a contract (schema, ordering, OHLC bounds). Names where."""


class SourceError(HeliosError):
    """A market-data source answered with something unusable (4xx, malformed page)."""


class TemporaryError(HeliosError):
    """A transient failure (timeout, 429, 5xx) that a retry may cure."""
