"""PostgreSQL records: the store's parts (conversations and inbound messages, interrupts, the audit trail), runs
(what a job started from), the outbox (what Slack should show) and streamed messages."""
