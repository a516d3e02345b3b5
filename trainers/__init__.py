"""Everything that runs the policy model (installed as `curator.trainers`)."""
