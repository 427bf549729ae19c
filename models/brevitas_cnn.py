"""A digits_cnn-shaped network trained quantization-aware with Brevitas, exported to QONNX.

Power-of-2 (fixed-point) scales throughout, 4-bit weights, 8-bit activations,
biases on the accumulator grid (Int16Bias), 16-bit logits, so hwgen keeps every
trained format exactly. Writes models/digits_cnn_qonnx.onnx (what `hwgen build`
reads) and models/digits_cnn_brevitas_state.pt (the state dict, loaded with
weights_only=True by the test that compares hwgen's RTL with Brevitas itself).

Run: python models/brevitas_cnn.py   (about a minute on 2 cores; needs brevitas, onnx, onnxscript, onnxoptimizer)
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from training import accuracy, fit  # models/ is on sys.path when a script here runs

from hwgen.data import DIGITS_SHAPE, digits

HERE = Path(__file__).resolve().parent
ONNX_PATH = HERE / "digits_cnn_qonnx.onnx"
STATE_PATH = HERE / "digits_cnn_brevitas_state.pt"
WEIGHT_BITS, ACT_BITS, LOGIT_BITS = 4, 8, 16


def brevitas_cnn() -> nn.Module:
    import brevitas.nn as qnn
    from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Int16Bias,
                                Uint8ActPerTensorFixedPoint)

    def conv(cin, cout):
        return qnn.QuantConv2d(cin, cout, 3, padding=1, weight_quant=Int8WeightPerTensorFixedPoint,
                               weight_bit_width=WEIGHT_BITS, bias_quant=Int16Bias, return_quant_tensor=True)

    def relu():
        return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=ACT_BITS, return_quant_tensor=True)

    class BrevitasDigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=ACT_BITS,
                                         return_quant_tensor=True)
            self.conv1, self.relu1 = conv(1, 8), relu()
            self.conv2, self.relu2 = conv(8, 16), relu()
            self.pool = nn.MaxPool2d(2)  # max keeps the scale: QuantTensor passes through
            self.fc = qnn.QuantLinear(16 * 4 * 4, 10, weight_quant=Int8WeightPerTensorFixedPoint,
                                      weight_bit_width=WEIGHT_BITS, bias_quant=Int16Bias, return_quant_tensor=True)
            self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=LOGIT_BITS)

        def forward(self, x):
            x = self.pool(self.relu2(self.conv2(self.relu1(self.conv1(self.inp(x))))))
            return self.out(self.fc(torch.flatten(x, 1)))

    return BrevitasDigitsCNN()


def train(model: nn.Module, epochs: int = 30, seed: int = 0) -> float:
    tr, te = digits("train"), digits("test")
    fit(model, tr.x, tr.y, epochs, seed)
    return accuracy(model, te.x, te.y)


def main() -> None:
    from brevitas.export import export_qonnx

    torch.set_num_threads(2)
    model = brevitas_cnn()
    acc = train(model)
    model.eval()
    torch.save(model.state_dict(), STATE_PATH)
    export_qonnx(model, torch.zeros((1, *DIGITS_SHAPE)), export_path=str(ONNX_PATH))
    import onnx  # one self-contained file: the exporter writes the weights beside it

    onnx.save_model(onnx.load(str(ONNX_PATH)), str(ONNX_PATH), save_as_external_data=False)
    Path(str(ONNX_PATH) + ".data").unlink(missing_ok=True)
    results = json.loads((HERE / "accuracy.json").read_text())
    results["digits_cnn_qonnx"] = {"brevitas_test_accuracy": acc, "weight_bits": WEIGHT_BITS, "act_bits": ACT_BITS}
    (HERE / "accuracy.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"digits_cnn (Brevitas, {WEIGHT_BITS}-bit weights): test accuracy {acc:.4f} -> {ONNX_PATH.name}")


if __name__ == "__main__":
    main()
