"""Presentation: a plan and a pass in words and in JSON, worded in one place.

Imports the engine only. The plan JSON document and its schema, the plan table, the one wording
of a pass summary and of a problem that the logs, `pruner run`, the health pings and the demo
share, the alert paragraph that pings and webhooks send to people, and a backtest's table, JSON
and SVG picture.
"""
