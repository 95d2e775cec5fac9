"""ctbench: the Compressive Transformer reference implementation and benchmark suite."""
__version__ = "0.1.0"
