"""Building blocks shared by the stages: data, splits, models, training."""

import os

# TensorFlow's C++ start-up chatter (no CUDA driver, CPU features) is not for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
