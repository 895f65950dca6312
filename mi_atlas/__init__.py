"""mi-atlas: the survey "Locate, Steer, and Improve" (arXiv 2601.14004) made executable."""

__version__ = "0.1.0"
