"""Adapters of the course-platform part: export files, MongoDB stores, Prometheus."""
