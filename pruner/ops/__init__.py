"""Running pruner in production: the daemon, and what watches its passes from outside.

Metrics, health pings, the heartbeat, systemd notifications, logging and signals. They read
finished passes (engine.results) and never decide anything a pass does.
"""
