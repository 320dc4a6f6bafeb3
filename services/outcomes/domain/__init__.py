"""Pure rules of the outcomes service: which assessment wins, what a follow-up's outcome is."""
