"""PostgreSQL records beside the store: runs (what a job started from) and the outbox (what Slack should show)."""
