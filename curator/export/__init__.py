"""Export: filtered, curriculum-ordered datasets in the formats trainers read, with a dataset card."""
