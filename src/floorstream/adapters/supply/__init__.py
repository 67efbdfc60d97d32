"""Supply-chain feeds: ASNs, carrier status and container events from files, polls, pushes."""
