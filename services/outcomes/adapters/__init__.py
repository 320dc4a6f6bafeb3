"""MongoDB storage of the outcomes service."""
