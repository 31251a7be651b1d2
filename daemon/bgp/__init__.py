"""The BGP speakers of the gateway: one session per tunnel of a dynamic connection (docs/bgp.md)."""
