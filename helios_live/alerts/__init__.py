"""Alerts: conditions the operator must hear of (docs/alerts.md), sent to webhook, Slack,
Discord, Telegram and email, throttled per condition, every delivery recorded in the ledger."""
