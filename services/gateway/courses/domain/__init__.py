"""Pure rules of the course-platform part: exports, run configuration, learners, progress,
xAPI statements."""
