"""The iBeST platform runtime: the NATS/MongoDB backbone services share, and the `ibest` CLI."""
