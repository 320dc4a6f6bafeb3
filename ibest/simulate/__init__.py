"""A realistic, seeded rollout published through the public contract (`ibest simulate`)."""
