import json

import pytest

from hwgen import api
from hwgen.errors import PlanError
from hwgen.quant import QuantPlan


@pytest.fixture(scope="module")
def cnn_plan(cnn_path):
    return api.quantize(cnn_path, bits=8).plan


def test_plan_json_round_trip_and_reuse(tmp_path, cnn_path, cnn_plan):
    cnn_plan.save(tmp_path / "plan.json")
    again = QuantPlan.load(tmp_path / "plan.json")
    assert again == cnn_plan
    qm = api.quantize(cnn_path, plan=tmp_path / "plan.json")
    assert qm.plan == cnn_plan


def _edit(tmp_path, plan, layer, field, value):
    obj = plan.to_json()
    for lp in obj["layers"]:
        if lp["name"] == layer:
            lp[field] = value
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize("layer, field, value, message", [
    ("conv2", "bias", {"bits": 16, "frac": 30, "signed": True},
     "plan layer 'conv2' field 'bias': frac 30 exceeds the accumulator's 12 fractional bits"),
    ("fc", "acc_bits", 8, "plan layer 'fc' field 'acc_bits': 8 bits is too narrow"),
    ("conv1", "weight", {"bits": 40, "frac": 3, "signed": True},
     "plan layer 'conv1' field 'weight': bits must be an integer in 1..32, got 40"),
    ("conv1", "out", {"bits": 0, "frac": 3, "signed": False},
     "plan layer 'conv1' field 'out': bits must be an integer in 1..32, got 0"),
    ("max_pool2d", "out", {"bits": 6, "frac": 3, "signed": False}, "plan layer 'max_pool2d' field 'out': maxpool2d does no arithmetic"),
    ("conv1", "weight", {"frac": 3}, "plan layer 'conv1' field 'weight': a format needs 'bits' and 'frac'"),
    ("conv1", "op", "linear", "plan layer 'conv1' field 'op': is 'linear' but the model has 'conv2d'"),
])
def test_invalid_plan_fields_named(tmp_path, cnn_path, cnn_plan, layer, field, value, message):
    with pytest.raises(PlanError) as exc:
        api.quantize(cnn_path, plan=_edit(tmp_path, cnn_plan, layer, field, value))
    assert str(exc.value).startswith(message)


def test_plan_schema_checked(tmp_path, cnn_path, cnn_plan):
    obj = cnn_plan.to_json()
    obj["version"] = 99
    (tmp_path / "p.json").write_text(json.dumps(obj))
    with pytest.raises(PlanError, match="schema version 99 is not supported"):
        api.quantize(cnn_path, plan=tmp_path / "p.json")
    obj = cnn_plan.to_json()
    obj["layers"] = obj["layers"][:-1]
    (tmp_path / "p.json").write_text(json.dumps(obj))
    with pytest.raises(PlanError, match=r"missing layers \['fc'\]"):
        api.quantize(cnn_path, plan=tmp_path / "p.json")


def test_accumulator_too_wide_rejected(cnn_path):
    with pytest.raises(PlanError, match="field 'acc_bits': these formats need a .*-bit accumulator; hwgen supports at most 48"):
        api.quantize(cnn_path, bits=30)
