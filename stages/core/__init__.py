"""Building blocks shared by the stages: data, splits, models, training."""
