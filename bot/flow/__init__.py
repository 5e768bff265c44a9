"""Orchestration: each unit does its durable step first (records, outbox, jobs in one transaction), then asks
the projector to show it in Slack."""
