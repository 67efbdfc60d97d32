"""Supply-chain feeds: ASNs, carrier status and container events from files, HTTP polls and pushes."""
