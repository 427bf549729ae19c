"""Open a model file without unpickling anything untrusted, and list its aten calls.

Both front ends (TorchScript, torch.export) are reduced to the same flat list
of `Call`s so that one set of handlers builds the graph IR.
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from ..errors import ModelFileError, UnsupportedOpError

INPUT_SHAPE_FILE = "hwgen_input_shape.json"  # extra file our TorchScript exports carry


@dataclass(frozen=True)
class Ref:
    """A tensor computed by the graph (as opposed to a constant parameter)."""

    name: str


class Unresolved:
    """A non-constant scalar (e.g. `x.size(0)`); handlers may accept it where the batch goes."""

    def __repr__(self) -> str:
        return "<dynamic>"


@dataclass
class Call:
    op: str
    args: list[Any]
    output: str
    where: str
    hint: str = ""  # a readable name taken from parameter names or module paths


@dataclass
class LoadedModel:
    input_name: str
    input_shape: tuple[int, ...] | None
    calls: list[Call]
    output: str
    source: str
    kind: str
    extra: dict = field(default_factory=dict)


def _sanitize(name: str) -> str:
    name = re.sub(r"^self\.", "", name)
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "t"


def _norm_op(name: str) -> str:
    """'aten::relu_' / 'aten.relu.default' -> 'relu'."""
    name = name.split("::")[-1]
    return name.rstrip("_") if not name.startswith("_") else "_" + name[1:].rstrip("_")


def classify(path: Path) -> str:
    """'torchscript', 'export', 'onnx', 'torch_save' or 'pickle'; raises for unreadable files."""
    if not path.exists():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    try:
        head = path.read_bytes()[:4]
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {str(path)!r}: {exc.strerror}") from exc
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelFileError(
                f"model file {str(path)!r} is a damaged zip archive ({exc}); it is truncated or corrupt: "
                "export it again with torch.jit.save or torch.export.save"
            ) from exc
        if bad is not None:
            raise ModelFileError(f"model file {str(path)!r} is corrupt (bad CRC in {bad!r}); export it again")
        if any(n.endswith("/code/__torch__.py") or "/code/__torch__/" in n for n in names):
            return "torchscript"
        if any(n.endswith("archive_format") or "/models/" in n and n.endswith(".json") for n in names):
            return "export"
        if any(n.endswith("data.pkl") for n in names):
            return "torch_save"
        raise ModelFileError(
            f"model file {str(path)!r} is a zip archive but neither TorchScript nor torch.export; "
            "save the model with torch.jit.save(torch.jit.script(model)) or torch.export.save"
        )
    if head[:1] == b"\x80" or head[:2] in (b"\x8a\x0a",):
        return "pickle"
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":  # protobuf field 1 (ir_version)
        return "onnx"
    raise ModelFileError(
        f"model file {str(path)!r} is not a TorchScript, torch.export or ONNX file (unknown header {head!r}); "
        "it may be truncated or corrupt"
    )


def load(path: str | Path, trust: bool = False, input_shape: tuple[int, ...] | None = None) -> LoadedModel:
    path = Path(path)
    kind = classify(path)
    if kind == "torchscript":
        return _load_torchscript(path)
    if kind == "export":
        return _load_export(path)
    if kind == "onnx":
        from .onnx_front import load_onnx

        return load_onnx(path)
    return _load_pickle(path, kind, trust, input_shape)


def _load_pickle(path: Path, kind: str, trust: bool, input_shape) -> LoadedModel:
    import torch

    if not trust:
        if kind == "torch_save":
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:
                obj = None
            if obj is not None:
                raise ModelFileError(
                    f"model file {str(path)!r} holds only tensors (a state dict?), not a model: "
                    "export the model with torch.jit.script/torch.jit.save or torch.export.save"
                )
        raise ModelFileError(
            f"model file {str(path)!r} is an arbitrary pickle, which can run code when loaded; hwgen refuses it. "
            "Export it with torch.jit.save or torch.export.save, or pass --trust if you trust the file"
        )
    try:
        module = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelFileError(f"cannot unpickle {str(path)!r}: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelFileError(f"{str(path)!r} unpickles to {type(module).__name__}, not a torch.nn.Module")
    if input_shape is None:
        raise ModelFileError(f"{str(path)!r} records no input shape: pass --input-shape, e.g. --input-shape 1,8,8")
    try:
        ep = torch.export.export(module.eval(), (torch.zeros((1, *input_shape)),))
    except Exception as exc:
        raise ModelFileError(f"torch.export could not trace the trusted module: {str(exc).splitlines()[0]}") from exc
    return _from_exported_program(ep, str(path))


# --- TorchScript -------------------------------------------------------------------------------

def _load_torchscript(path: Path) -> LoadedModel:
    import torch

    extra = {INPUT_SHAPE_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        frozen = torch.jit.freeze(module.eval())
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"cannot load TorchScript file {str(path)!r} ({first}); it may be corrupt") from exc
    shape = None
    if extra[INPUT_SHAPE_FILE]:
        shape = tuple(json.loads(extra[INPUT_SHAPE_FILE]))
    graph = frozen.graph
    graph_inputs = list(graph.inputs())
    if len(graph_inputs) != 2:
        raise UnsupportedOpError(f"{path}: the model's forward must take exactly one tensor, it takes {len(graph_inputs) - 1}")
    tensors: dict[Any, str] = {}
    used: set[str] = set()

    def fresh(hint: str) -> str:
        base = _sanitize(hint)
        name, k = base, 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        return name

    input_name = fresh("input")
    tensors[graph_inputs[1]] = input_name

    def resolve(value):
        if value in tensors:
            return Ref(tensors[value])
        node = value.node()
        if node.kind() == "prim::Constant":
            ivalue = value.toIValue()
            if isinstance(ivalue, torch.Tensor):
                return ivalue.detach().double().numpy()
            return ivalue
        if node.kind() == "prim::ListConstruct":
            return [resolve(v) for v in node.inputs()]
        return Unresolved()

    calls: list[Call] = []
    for node in graph.nodes():
        kind = node.kind()
        outputs = list(node.outputs())
        is_tensor = [o.type().kind() == "TensorType" for o in outputs]
        if kind == "prim::Constant" or not any(is_tensor):
            continue  # parameters are read on use; scalar/shape checks do not reach the hardware
        where = _ts_where(node)
        if len(outputs) != 1:
            raise UnsupportedOpError(f"unsupported op {kind!r} at {where}: it returns several tensors")
        hint = ""
        for v in node.inputs():
            if v.node().kind() == "prim::Constant" and v.type().kind() == "TensorType":
                hint = re.sub(r"^self\.", "", re.sub(r"\.(weight|bias)(_fused_bn)?$", "", v.debugName()))
                break
        name = fresh(hint or outputs[0].debugName().split(".")[0] or kind.split("::")[-1])
        calls.append(Call(op=_norm_op(kind), args=[resolve(v) for v in node.inputs()], output=name, where=where, hint=hint))
        tensors[outputs[0]] = name
    outs = list(graph.outputs())
    if len(outs) != 1 or outs[0] not in tensors:
        raise UnsupportedOpError(f"{path}: the model must return a single tensor")
    return LoadedModel(input_name, shape, calls, tensors[outs[0]], str(path), "torchscript")


def _ts_where(node) -> str:
    text = node.sourceRange().strip().splitlines()
    loc = text[0] if text else ""
    scope = node.scopeName()
    return " ".join(p for p in (scope and f"module {scope}", loc and f"source {loc}") if p) or "an unnamed place"


# --- torch.export ------------------------------------------------------------------------------

def _load_export(path: Path) -> LoadedModel:
    import torch

    try:
        ep = torch.export.load(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"cannot load torch.export archive {str(path)!r} ({first}); it may be corrupt") from exc
    return _from_exported_program(ep, str(path))


def _from_exported_program(ep, source: str) -> LoadedModel:
    import operator

    import torch

    sig = ep.graph_signature
    consts: dict[str, Any] = {}
    lookup = {**ep.state_dict, **getattr(ep, "constants", {})}
    for ph, target in {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
                       **getattr(sig, "inputs_to_lifted_tensor_constants", {})}.items():
        consts[ph] = lookup[target].detach().double().numpy()
    user_inputs = list(sig.user_inputs)
    if len(user_inputs) != 1:
        raise UnsupportedOpError(f"{source}: the model's forward must take exactly one tensor, it takes {len(user_inputs)}")
    refs: dict[str, str] = {}
    calls: list[Call] = []
    input_name, shape, output = "input", None, None

    def resolve(a):
        if isinstance(a, torch.fx.Node):
            if a.name in consts:
                return consts[a.name]
            if a.name in refs:
                return Ref(refs[a.name])
            return Unresolved()
        if isinstance(a, (list, tuple)):
            return [resolve(x) for x in a]
        return a

    for node in ep.graph.nodes:
        if node.op == "placeholder":
            if node.name == user_inputs[0]:
                refs[node.name] = input_name
                val = node.meta.get("val")
                if val is not None:
                    shape = tuple(int(s) for s in val.shape[1:])
            continue
        if node.op == "output":
            res = node.args[0]
            if len(res) != 1 or not isinstance(res[0], torch.fx.Node):
                raise UnsupportedOpError(f"{source}: the model must return a single tensor")
            output = refs[res[0].name]
            continue
        if node.op != "call_function":
            raise UnsupportedOpError(f"unsupported graph node {node.op!r} ({node.name}) in {source}")
        stack = node.meta.get("nn_module_stack") or {}
        module_path = list(stack.values())[-1][0] if stack else ""
        trace = (node.meta.get("stack_trace") or "").strip().splitlines()
        where = " ".join(p for p in (module_path and f"module {module_path}", trace and f"source {trace[-2].strip() if len(trace) > 1 else trace[-1].strip()}") if p) or node.name
        if node.target is operator.getitem:
            op, args = "getitem", [resolve(a) for a in node.args]
        else:
            schema = node.target._schema
            op = _norm_op(schema.name)
            args = []
            for i, arg in enumerate(schema.arguments):
                if i < len(node.args):
                    args.append(resolve(node.args[i]))
                elif arg.name in node.kwargs:
                    args.append(resolve(node.kwargs[arg.name]))
                else:
                    args.append(arg.default_value if arg.has_default_value() else None)
        refs[node.name] = node.name
        calls.append(Call(op=op, args=args, output=node.name, where=where, hint=module_path))
    if output is None:
        raise UnsupportedOpError(f"{source}: the exported graph has no output")
    return LoadedModel(input_name, shape, calls, output, source, "export")
