import json

import numpy as np
import pytest
import torch
from torch import nn

from hwgen import ir
from hwgen.errors import ModelFileError, UnsupportedOpError
from hwgen.importer import import_model
from hwgen.reference import float_forward
from model_zoo import save_random_model


def _float_out(im, x):
    with torch.no_grad():
        return float_forward(im.graph, im.params, torch.as_tensor(x, dtype=torch.float64))[im.graph.output.name].numpy()


def test_reference_models_import_and_match_torch(cnn_path, mlp_path):
    x = torch.rand(16, 1, 8, 8)
    for path, ops in ((cnn_path, ["input", "conv2d", "conv2d", "maxpool2d", "flatten", "linear"]),
                      (mlp_path, ["input", "flatten", "linear", "linear"])):
        im = import_model(path)
        assert [n.op for n in im.graph.nodes] == ops
        with torch.no_grad():
            want = torch.jit.load(str(path))(x).double().numpy()
        np.testing.assert_allclose(_float_out(im, x.numpy()), want, rtol=1e-5, atol=1e-5)
    conv1 = import_model(cnn_path).graph.node("conv1")
    assert conv1.activation == "relu" and conv1.shape == (8, 8, 8)  # BN folded, ReLU fused


@pytest.mark.parametrize("seed", range(8))
def test_random_models_import_and_match_torch(tmp_path, seed):
    path = tmp_path / ("m.pt" if seed % 2 == 0 else "m.pt2")
    model, shape = save_random_model(seed, path)
    im = import_model(path, input_shape=shape)
    assert not any(n.op == "batchnorm" for n in im.graph.nodes)
    x = torch.randn(8, *shape)
    with torch.no_grad():
        want = model(x).double().numpy()
    np.testing.assert_allclose(_float_out(im, x.numpy()), want, rtol=1e-4, atol=1e-4)


def test_graph_json_round_trip(cnn_path):
    g = import_model(cnn_path).graph
    again = ir.Graph.from_json(json.loads(g.dumps()))
    assert again == g


def test_export_archive_records_input_shape(tmp_path):
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5)).eval()
    torch.export.save(torch.export.export(m, (torch.zeros(1, 3, 6, 6),)), str(tmp_path / "m.pt2"))
    im = import_model(tmp_path / "m.pt2")
    assert im.graph.input.shape == (3, 6, 6)
    assert im.graph.output.shape == (5,)


class Sine(nn.Module):
    """An op hwgen has no rule for: sin."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.sin(self.fc(x))


def test_unsupported_op_names_op_place_and_supported_list(tmp_path):
    torch.export.save(torch.export.export(Sine().eval(), (torch.zeros(1, 4),)), str(tmp_path / "s.pt2"))
    with pytest.raises(UnsupportedOpError) as exc:
        import_model(tmp_path / "s.pt2")
    msg = str(exc.value)
    assert "unsupported op 'sin'" in msg and "test_importer.py" in msg and "Conv2d" in msg
    torch.jit.save(torch.jit.script(Sine().eval()), str(tmp_path / "s.pt"))
    with pytest.raises(UnsupportedOpError, match=r"unsupported op 'sin' at .*test_importer\.py"):
        import_model(tmp_path / "s.pt", input_shape=(4,))


def test_torchscript_without_shape_needs_input_shape(tmp_path):
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(4, 2)).eval()), str(tmp_path / "l.pt"))
    with pytest.raises(ModelFileError, match="pass --input-shape"):
        import_model(tmp_path / "l.pt")
    assert import_model(tmp_path / "l.pt", input_shape=(4,)).graph.output.shape == (2,)


def test_corrupt_and_truncated_files(tmp_path, cnn_path):
    data = cnn_path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        import_model(tmp_path / "trunc.pt")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    (tmp_path / "flip.pt").write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError, match="corrupt"):
        import_model(tmp_path / "flip.pt")
    (tmp_path / "junk.pt").write_bytes(b"hello world")
    with pytest.raises(ModelFileError, match="not a TorchScript, torch.export or ONNX file"):
        import_model(tmp_path / "junk.pt")
    with pytest.raises(ModelFileError, match="does not exist"):
        import_model(tmp_path / "missing.pt")


class Boom:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickles_refused_without_trust(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save(Boom(), tmp_path / "evil.pt")
    with pytest.raises(ModelFileError, match="arbitrary pickle.*--trust"):
        import_model(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ModelFileError, match="only tensors"):
        import_model(tmp_path / "sd.pt")
    torch.save(model, tmp_path / "full.pt")
    with pytest.raises(ModelFileError, match="--trust"):
        import_model(tmp_path / "full.pt")
    im = import_model(tmp_path / "full.pt", trust=True, input_shape=(1, 8, 8))
    assert [n.op for n in im.graph.nodes] == ["input", "flatten", "linear"]


def test_batchnorm_without_conv_is_rejected(tmp_path):
    m = nn.Sequential(nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(64, 2)).eval()
    torch.export.save(torch.export.export(m, (torch.zeros(1, 1, 8, 8),)), str(tmp_path / "bn.pt2"))
    with pytest.raises(UnsupportedOpError, match="folds BatchNorm only into"):
        import_model(tmp_path / "bn.pt2")


def _save(model, example, tmp_path, front_end):
    """The model through one of the two front ends: traced TorchScript or a torch.export archive."""
    path = tmp_path / ("m.pt" if front_end == "torchscript" else "m.pt2")
    if front_end == "torchscript":
        torch.jit.save(torch.jit.trace(model, example), str(path))
    else:
        torch.export.save(torch.export.export(model, (example,)), str(path))
    return path


@pytest.mark.parametrize("front_end", ["torchscript", "export"])
@pytest.mark.parametrize("softmax", [nn.Softmax(dim=1), nn.LogSoftmax(dim=1)])
def test_trailing_softmax_is_left_to_the_host(tmp_path, front_end, softmax):
    torch.manual_seed(0)
    body = nn.Sequential(nn.Flatten(), nn.Linear(16, 5))
    model = nn.Sequential(body, softmax).eval()
    x = torch.randn(3, 1, 4, 4)
    path = _save(model, x[:1], tmp_path, front_end)
    im = import_model(path, input_shape=(1, 4, 4))
    assert im.graph.host_ops == (type(softmax).__name__.lower().replace("logsoftmax", "log_softmax"),)
    assert [n.op for n in im.graph.nodes] == ["input", "flatten", "linear"]  # the graph ends at the logits
    logits = float_forward(im.graph, im.params, x.double())[im.graph.output.name]
    assert torch.allclose(logits.float(), body(x), atol=1e-5)
    assert ir.Graph.from_json(json.loads(im.graph.dumps())).host_ops == im.graph.host_ops


def test_softmax_inside_the_network_is_refused(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 5), nn.Softmax(dim=1), nn.Linear(5, 2)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 4, 4),)), str(tmp_path / "m.pt2"))
    with pytest.raises(UnsupportedOpError, match="feeds further layers; hwgen supports a softmax only as the model's last op"):
        import_model(tmp_path / "m.pt2")


@pytest.mark.parametrize("front_end", ["torchscript", "export"])
def test_conv1d_family_imports_as_height_one_images_and_matches_torch(tmp_path, front_end):
    """Conv1d (strided, padded, grouped), BatchNorm1d, MaxPool1d, AvgPool1d, AdaptiveAvgPool1d(1): a 1-d signal
    (C, L) becomes a (C, 1, L) image, each op its 2-d form with a (1, k) window."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv1d(2, 4, 5, stride=2, padding=2), nn.BatchNorm1d(4), nn.ReLU(), nn.MaxPool1d(2),
                          nn.Conv1d(4, 6, 3, padding=1, groups=2), nn.ReLU(), nn.AvgPool1d(2),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 3)).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    x = torch.randn(5, 2, 40)
    path = _save(model, x[:1], tmp_path, front_end)
    im = import_model(path, input_shape=(2, 40))
    assert [(n.op, n.shape) for n in im.graph.nodes] == [
        ("input", (2, 1, 40)), ("conv2d", (4, 1, 20)), ("maxpool2d", (4, 1, 10)), ("conv2d", (6, 1, 10)),
        ("avgpool2d", (6, 1, 5)), ("avgpool2d", (6, 1, 1)), ("flatten", (6,)), ("linear", (3,))]
    conv = im.graph.nodes[1]
    assert (conv.kernel, conv.stride, conv.padding) == ((1, 5), (1, 2), (0, 2))
    y = float_forward(im.graph, im.params, x.reshape(5, 2, 1, 40).double())[im.graph.output.name]
    assert torch.allclose(y.float(), model(x), atol=1e-5)


@pytest.mark.parametrize("front_end", ["torchscript", "export"])
def test_zero_padding_folds_into_the_conv_or_avgpool_that_reads_it(tmp_path, front_end):
    torch.manual_seed(3)
    model = nn.Sequential(nn.ZeroPad2d(1), nn.ZeroPad2d((2, 2, 1, 1)), nn.Conv2d(1, 4, 3, stride=2, padding=1),
                          nn.ReLU(), nn.ZeroPad2d(1), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).eval()
    x = torch.randn(4, 1, 8, 8)
    path = _save(model, x[:1], tmp_path, front_end)
    im = import_model(path, input_shape=(1, 8, 8))
    conv, pool = im.graph.nodes[1], im.graph.nodes[2]
    assert (conv.op, conv.padding, pool.op, pool.padding) == ("conv2d", (3, 4), "avgpool2d", (1, 1))
    y = float_forward(im.graph, im.params, x.double())[im.graph.output.name]
    assert torch.allclose(y.float(), model(x), atol=1e-5)


class _PaddedBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad, self.conv, self.pool = nn.ZeroPad2d(1), nn.Conv2d(1, 1, 3), nn.MaxPool2d(3, stride=1)

    def forward(self, x):
        p = self.pad(x)
        return self.conv(p) + self.pool(p)


@pytest.mark.parametrize("layers, message", [
    ([nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(1, 2, 3)], "is asymmetric; hwgen pads both sides alike"),
    ([nn.ZeroPad2d(1), nn.MaxPool2d(2)], "zero padding feeds 'max_pool2d'"),
    ([nn.ConstantPad2d(1, 0.5), nn.Conv2d(1, 2, 3)], "only zero padding"),
    ([_PaddedBranches()], "zero padding feeds 'max_pool2d'"),  # folding into the conv does not excuse the pool
])
def test_padding_that_cannot_fold_is_refused_in_one_line(tmp_path, layers, message):
    model = nn.Sequential(*layers).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 8, 8),)), str(tmp_path / "m.pt2"))
    with pytest.raises(UnsupportedOpError, match=message):
        import_model(tmp_path / "m.pt2")


@pytest.mark.parametrize("front_end", ["torchscript", "export"])
def test_new_ops_import_through_both_front_ends_and_match_torch(tmp_path, front_end):
    """LeakyReLU, Hardtanh, the table activations, cat on channels and nearest Upsample: each its IR op,
    activations fused where they follow a conv, the float graph equal to torch (the 0.1 slope rounded, warned)."""
    from model_zoo import NewOpsNet

    torch.manual_seed(5)
    model = NewOpsNet().eval()
    x = torch.randn(4, 1, 12, 12)
    path = _save(model, x[:1], tmp_path, front_end)
    with pytest.warns(UserWarning, match=r"negative_slope 0.1 rounded to the nearest power of 2, 2\*\*-3"):
        im = import_model(path, input_shape=(1, 12, 12))
    by_op = {}
    for n in im.graph.nodes:
        by_op.setdefault(n.op, []).append(n)
    assert [n.activation for n in by_op["conv2d"][:4]] == ["leaky:3", "none", "clamp:-0.5:1.5", "leaky:3"]
    assert [n.function for n in by_op["lut"]] == ["tanh", "hardsigmoid", "hardswish", "silu", "sigmoid"]
    assert [n.shape for n in by_op["concat"]] == [(5, 12, 12), (11, 12, 12)]
    assert [(n.scale, n.shape) for n in by_op["upsample"]] == [(2, (6, 12, 12))]
    rounded = NewOpsNet(slope=0.125).eval()  # the float graph runs the rounded slope
    rounded.load_state_dict(model.state_dict())
    with torch.no_grad():
        want = rounded(x).double().numpy()
    np.testing.assert_allclose(_float_out(im, x.numpy()), want, rtol=1e-5, atol=1e-5)


def test_plain_onnx_model_imports_every_new_op_and_matches_torch(tmp_path):
    """`hwgen build model.onnx`: a float ONNX export (opset 18) reads into the same graph as the PyTorch front ends."""
    from model_zoo import NewOpsNet

    torch.manual_seed(5)
    model = NewOpsNet(slope=0.125).eval()
    x = torch.randn(4, 1, 12, 12)
    torch.onnx.export(model, (x[:1],), str(tmp_path / "m.onnx"), dynamo=True, opset_version=18, verbose=False)
    im = import_model(tmp_path / "m.onnx")
    assert im.trained is None and im.graph.input.shape == (1, 12, 12)
    assert [n.op for n in im.graph.nodes].count("lut") == 5 and [n.op for n in im.graph.nodes].count("concat") == 2
    with torch.no_grad():
        want = model(x).double().numpy()
    np.testing.assert_allclose(_float_out(im, x.numpy()), want, rtol=1e-5, atol=1e-5)


def _onnx_file(path, nodes, inits, opset=18, domain_opsets=()):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    *(helper.make_opsetid(d, 1) for d in domain_opsets)])
    onnx.save(model, str(path))
    return path


def test_qonnx_scale_that_is_not_a_power_of_two_is_refused_with_the_fix(tmp_path):
    from onnx import helper

    quant = helper.make_node("Quant", ["w", "s", "z", "b"], ["wq"], domain="qonnx.custom_op.general", signed=1, narrow=0,
                             rounding_mode="ROUND")
    gemm = helper.make_node("Gemm", ["x", "wq"], ["y"], transB=1)
    path = _onnx_file(tmp_path / "q.onnx", [quant, gemm], {"w": np.ones((2, 4)) * 0.3, "s": 0.3, "z": 0.0, "b": 4.0},
                      domain_opsets=["qonnx.custom_op.general"])
    with pytest.raises(UnsupportedOpError, match=r"scale \[0\.3.*not a power of 2.*FixedPoint quantizers"):
        import_model(path)


def test_onnx_old_opset_corrupt_file_and_unknown_op_are_one_clear_error(tmp_path):
    from onnx import helper

    old = _onnx_file(tmp_path / "old.onnx", [helper.make_node("Relu", ["x"], ["y"])], {}, opset=11)
    with pytest.raises(ModelFileError, match="opset 11; hwgen reads opset 13 or newer"):
        import_model(old)
    (tmp_path / "bad.onnx").write_bytes(old.read_bytes()[:20])
    with pytest.raises(ModelFileError, match="truncated, corrupt or not ONNX"):
        import_model(tmp_path / "bad.onnx")
    sin = _onnx_file(tmp_path / "sin.onnx", [helper.make_node("Sin", ["x"], ["y"], name="the_sin")], {})
    with pytest.raises(UnsupportedOpError, match=r"unsupported op 'Sin' \(ai.onnx\) at node 'the_sin'.*supports: Conv2d"):
        import_model(sin)


def test_every_node_shape_is_the_shape_torch_computes(tmp_path):
    """The op rules' shape rule (hwgen.ops, applied by the importer) against torch: every node of the op zoo has
    the shape of its float output."""
    from model_zoo import NewOpsNet

    torch.manual_seed(5)
    path = _save(NewOpsNet(slope=0.125).eval(), torch.zeros(1, 1, 12, 12), tmp_path, "export")
    im = import_model(path)
    with torch.no_grad():
        outs = float_forward(im.graph, im.params, torch.zeros(2, 1, 12, 12, dtype=torch.float64))
    assert len(im.graph.nodes) == 17
    for n in im.graph.nodes:
        assert tuple(outs[n.name].shape[1:]) == n.shape, n.name
