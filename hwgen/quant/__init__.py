"""Quantization: calibration statistics -> a power-of-2 plan -> integer parameters."""
from .calibrate import TensorStats, calibrate
from .config import LayerBits, QuantConfig, parse_override
from .plan import LayerPlan, QuantizedModel, QuantPlan, quantize_params
from .range_method import range_plan

METHODS = {"range": range_plan}

__all__ = ["METHODS", "LayerBits", "LayerPlan", "QuantConfig", "QuantPlan", "QuantizedModel", "TensorStats",
           "calibrate", "parse_override", "quantize_params", "range_plan"]
