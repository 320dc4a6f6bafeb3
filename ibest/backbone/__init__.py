"""What every service shares at run time: settings, streams, consuming, publishing,
dead letters, health and metrics. Contracts live in `shared`; domain logic in each service."""
