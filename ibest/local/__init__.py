"""Running the platform on one machine without Docker: servers as child processes."""
