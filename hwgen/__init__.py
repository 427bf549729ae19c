"""hwgen: a trained PyTorch model -> a verified fixed-point FPGA accelerator."""
__version__ = "0.1.0"
