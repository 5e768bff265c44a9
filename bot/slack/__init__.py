"""The Slack edge: the HTTP endpoint, the Bolt listeners, and the one gateway that makes every Web API call."""
