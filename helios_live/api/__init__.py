"""The live service's REST API: it turns requests into engine commands, nothing more."""
