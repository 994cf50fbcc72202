"""The trading domain: orders, fills, positions, the account and the exit rules. Pure: time is
an argument, and nothing here knows a venue, a database or a clock."""
