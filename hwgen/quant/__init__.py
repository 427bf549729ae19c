"""Quantization: calibration statistics -> a power-of-2 plan -> integer parameters."""
from .calibrate import TensorStats, calibrate
from .config import LayerBits, QuantConfig, parse_override
from .plan import LayerPlan, QuantizedModel, QuantPlan, quantize_params
from .analytic_method import analytic_plan
from .range_method import range_plan
from .sqnr_method import sqnr_plan
from .tqt_method import tqt_plan

METHODS = {"range": range_plan, "sqnr": sqnr_plan}  # from calibration statistics alone
DATA_METHODS = {"analytic": analytic_plan}  # also need the data (gradients)
TRAINING_METHODS = {"tqt": tqt_plan}  # also retrain the float parameters

__all__ = ["DATA_METHODS", "METHODS", "TRAINING_METHODS", "LayerBits", "LayerPlan", "QuantConfig", "QuantPlan", "QuantizedModel", "TensorStats",
           "calibrate", "parse_override", "quantize_params", "range_plan"]
