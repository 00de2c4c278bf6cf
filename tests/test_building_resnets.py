"""course_lib.lessons.building_resnets: summaries, the grown blocks, parity helpers, 28x28 variants."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from course_lib.lessons import building_resnets as A
from course_lib.counting import count_macs, layer_table
from course_lib.data import Data, DataInfo
from course_lib.errors import ConfigError
from course_lib.models import (BasicBlock, BlogPlain, BlogResNet, build_model, count_params, digit_resnet,
                               needs_projection, resnet18, shortcut)


# --------------------------------------------------------------------------- summaries


def test_summary_totals_are_the_blogs_parameters_and_the_sum_of_the_macs():
    text = A.summary(BlogResNet())
    total = text.splitlines()[-1].split()
    assert total[0] == "total"
    assert int(total[1].replace(",", "")) == count_params(BlogResNet()) == 221_810
    assert int(total[2].replace(",", "")) == count_macs(BlogResNet())
    assert "rblock2.conv1" in text and "15 x 7 x 7" in text


def test_top_level_shapes_trace_the_blogs_network():
    shapes = A.top_level_shapes(BlogResNet())
    assert shapes == [("conv1", (20, 28, 28)), ("pool", (20, 14, 14)), ("rblock1", (20, 14, 14)),
                      ("conv2", (15, 14, 14)), ("pool", (15, 7, 7)), ("rblock2", (15, 7, 7)),
                      ("fc1", (245,)), ("fc2", (10,))]
    c, h, w = dict(shapes)["rblock2"]
    assert c * h * w == BlogResNet().fc1.in_features


def test_cost_table_ratios_against_the_first_model():
    table = A.cost_table({"res": BlogResNet(), "plain": BlogPlain(), "digit18": build_model("resnet18")})
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert rows["plain"][2] == "1.0" and rows["plain"][4] == "1.0"
    params_ratio = count_params(build_model("resnet18")) / count_params(BlogResNet())
    assert float(rows["digit18"][2]) == pytest.approx(params_ratio, abs=0.05)


def test_describe_step_shows_shapes_and_params():
    line = A.describe_step("block", A.ProjectionBlock(4, 8, stride=2), torch.zeros(2, 4, 10, 10))
    assert "2 x 4 x 10 x 10 -> 2 x 8 x 5 x 5" in line
    assert f"{count_params(A.ProjectionBlock(4, 8, stride=2)):,} params" in line


# --------------------------------------------------------------------------- growing the network


def test_skip_block_has_the_plain_blocks_layers_and_adds_x():
    torch.manual_seed(0)
    plain, skip = A.PlainBlock(6, 6), A.SkipBlock(6)
    assert count_params(plain) == count_params(skip) == 2 * (6 * 6 * 9 + 2 * 6)
    skip.load_state_dict(plain.state_dict())
    plain.eval(), skip.eval()
    x = torch.randn(3, 6, 8, 8)
    assert torch.allclose(plain(x), F.relu(plain.f(x)))
    assert torch.allclose(skip(x), F.relu(plain.f(x) + x))
    assert not torch.allclose(skip(x), plain(x))


def test_skip_block_refuses_a_shape_change_and_names_the_fix():
    with pytest.raises(ConfigError, match="ProjectionBlock"):
        A.SkipBlock(16, 32, stride=2)
    with pytest.raises(ConfigError, match="same shape"):
        A.SkipBlock(16, 16, stride=2)


def test_zero_last_batchnorm_makes_a_skip_block_the_identity_on_relu_outputs():
    block = A.SkipBlock(5).eval()
    nn.init.zeros_(block.bn2.weight)
    x = F.relu(torch.randn(2, 5, 6, 6))
    assert torch.equal(block(x), x)


def test_projection_only_where_the_shape_changes():
    same, wider, strided = A.ProjectionBlock(8, 8), A.ProjectionBlock(8, 16), A.ProjectionBlock(8, 8, stride=2)
    assert same.downsample is None
    conv = wider.downsample[0]
    assert (conv.kernel_size, conv.stride, conv.in_channels, conv.out_channels) == ((1, 1), (1, 1), 8, 16)
    assert strided.downsample[0].stride == (2, 2)
    extra = count_params(wider) - count_params(A.PlainBlock(8, 16))
    assert extra == 8 * 16 + 2 * 16  # one 1x1 conv without bias, one BatchNorm
    assert wider(torch.randn(2, 8, 6, 6)).shape == (2, 16, 6, 6)
    assert strided(torch.randn(2, 8, 6, 6)).shape == (2, 8, 3, 3)


@pytest.mark.parametrize("c_in, c_out, stride", [(8, 8, 1), (8, 16, 1), (8, 8, 2), (8, 16, 2)])
def test_projection_block_is_the_reference_basic_block_with_the_courses_shortcut(c_in, c_out, stride):
    torch.manual_seed(0)
    reference = BasicBlock(c_in, c_out, stride, shortcut(c_in, c_out, stride))
    grown = A.ProjectionBlock(c_in, c_out, stride)
    assert (grown.downsample is not None) == needs_projection(c_in, c_out, stride)
    with torch.no_grad():  # non-trivial BatchNorm so that equal outputs mean something
        for bn in (m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.uniform_(0.5, 1.5)
    parity = A.compare_outputs(reference, grown, torch.randn(2, c_in, 8, 8))
    assert parity.tensors_copied == len(reference.state_dict()) and parity.identical


def test_make_stage_projects_only_in_its_first_block():
    stage = A.make_stage(4, 8, blocks=3, stride=2)
    info = A.block_list(stage)
    assert [(b.c_in, b.c_out, b.stride, b.shortcut) for b in info] == [
        (4, 8, 2, "projection"), (8, 8, 1, "identity"), (8, 8, 1, "identity")]
    assert stage(torch.randn(1, 4, 12, 12)).shape == (1, 8, 6, 6)
    with pytest.raises(ConfigError):
        A.make_stage(4, 8, blocks=0)


def test_grown_resnet18_is_course_libs_digit_resnet18():
    torch.manual_seed(0)
    reference = digit_resnet(18)
    grown = A.GrownResNet(A.RESNET18_LAYOUT, in_channels=1, num_classes=10)
    parity = A.compare_outputs(reference, grown, torch.rand(2, 1, 28, 28))
    assert parity.params_source == parity.params_target == count_params(reference)
    assert parity.tensors_copied == len(reference.state_dict())
    assert parity.identical and parity.allclose and parity.passed


def test_grown_resnet18_with_imagenet_stem_takes_resnet18_weights():
    torch.manual_seed(1)
    reference = resnet18()
    grown = A.GrownResNet(A.RESNET18_LAYOUT, in_channels=3, num_classes=1000, small_input=False)
    parity = A.compare_outputs(reference, grown, torch.rand(1, 3, 64, 64))
    assert parity.passed and parity.identical


def test_grown_resnet_rejects_a_bad_layout():
    with pytest.raises(ConfigError, match="layout"):
        A.GrownResNet([(2, 64)])
    with pytest.raises(ConfigError, match="layout"):
        A.GrownResNet([(0, 64, 1)])


# --------------------------------------------------------------------------- reading structure and parity


def test_block_list_and_stage_layout_of_torchvision_models():
    r34 = torchvision.models.resnet34(weights=None)
    assert A.stage_layout(r34) == [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)]
    blocks = A.block_list(r34)
    assert len(blocks) == 16
    assert [b.name for b in blocks if b.shortcut == "projection"] == ["layer2.0", "layer3.0", "layer4.0"]
    r50 = torchvision.models.resnet50(weights=None)
    info = A.block_list(r50)
    assert info[0].kind == "Bottleneck" and (info[0].c_in, info[0].c_out) == (64, 256)
    assert info[0].shortcut == "projection"  # 64 -> 256 channels, even at stride 1
    assert A.stage_layout(r50) == [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)]


def test_copy_weights_names_what_does_not_fit():
    with pytest.raises(ConfigError, match="shapes differ"):
        A.copy_weights(A.digit_variant(4), A.digit_variant(8))
    with pytest.raises(ConfigError, match="only in"):
        A.copy_weights(BlogResNet(), A.digit_variant(8))


def test_compare_outputs_tells_a_different_function_apart():
    torch.manual_seed(0)
    parity = A.compare_outputs(BlogResNet(), BlogPlain(), torch.rand(3, 1, 28, 28))
    assert parity.params_source == parity.params_target
    assert not parity.allclose and not parity.identical and not parity.passed
    assert parity.max_abs_diff > 0


def test_torchvision_parity_helper_on_resnet18():
    parity = A.torchvision_parity(18, input_size=(3, 64, 64), batch=1)
    assert parity.passed and parity.identical
    assert parity.params_target == count_params(torchvision.models.resnet18(weights=None))
    assert "ResNet-18" in str(parity) and "allclose True" in str(parity)
    with pytest.raises(ConfigError, match="valid depths"):
        A.torchvision_parity(19)


# --------------------------------------------------------------------------- 28x28 variants


def test_digit_variants_keep_depth_and_divide_width():
    full, narrow = A.digit_variant(1), A.digit_variant(4)
    assert full.spec["name"] == "resnet18"
    assert A.stage_layout(narrow) == [(2, 16, 1), (2, 32, 2), (2, 64, 2), (2, 128, 2)]
    assert narrow.conv1.kernel_size == (3, 3) and isinstance(narrow.maxpool, nn.Identity)
    assert narrow(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    ratio = count_macs(full) / count_macs(narrow)
    assert 14 < ratio < 17  # conv cost ~ C_in * C_out: 4x narrower -> ~16x cheaper


def test_shape_trace_table_shows_what_the_imagenet_stem_does_to_digits():
    table = A.shape_trace_table({"imagenet": resnet18(num_classes=10, in_channels=1), "digit": digit_resnet(18)})
    maxpool = next(line for line in table.splitlines() if line.startswith("maxpool")).split()
    assert " ".join(maxpool[1:]) == "64 x 7 x 7 64 x 28 x 28"
    layer4 = next(line for line in table.splitlines() if line.startswith("layer4")).split()
    assert " ".join(layer4[1:]) == "512 x 1 x 1 512 x 4 x 4"


def test_settings_cover_every_profile():
    from course_lib.profiles import PROFILES, settings

    rows = [settings(A.SETTINGS, name) for name in PROFILES]
    assert all(set(row) == {"throughput", "training"} for row in rows)
    assert settings(A.SETTINGS, "full")["training"]["width_divisor"] == 1  # the GPU profile trains the real ResNet-18


def _tiny_digits(n_train: int = 64, n_test: int = 32) -> Data:
    g = torch.Generator().manual_seed(0)
    info = DataInfo("sample", "test tensors", n_train, n_test, False)
    return Data(torch.rand(n_train, 1, 28, 28, generator=g), torch.arange(n_train) % 10,
                torch.rand(n_test, 1, 28, 28, generator=g), torch.arange(n_test) % 10, info)


def test_train_digit_models_trains_both_on_the_same_data():
    runs = A.train_digit_models(_tiny_digits(), dict(width_divisor=8, train=48, test=16, epochs=1), device="cpu")
    assert list(runs) == ["blog-resnet", "ResNet-18 (digits), 1/8 width"]
    for history in runs.values():
        assert len(history) == 1 and history.status == "completed" and history.config["recompute_bn"] is True
        assert round(history.final["test_acc"] * 16) == history.final["test_acc"] * 16  # a count of 16 digits
        assert history.config["dataset"]["n_train"] == 48
    assert runs["blog-resnet"].config["params"] == count_params(BlogResNet())
    assert runs["ResNet-18 (digits), 1/8 width"].config["params"] == count_params(A.digit_variant(8))
    text = A.format_runs(runs)
    assert text.startswith("data: sample from test tensors, 48 train / 16 test images (not the full dataset)")
    assert "1/8 width" in text
    assert "seconds" not in text.splitlines()[1] and "test accuracy" in text.splitlines()[1]  # no wall-clock times


def test_layer_rows_of_the_plain_twin_equal_the_resnets():
    assert layer_table(BlogResNet()) == layer_table(BlogPlain())


def test_parity_sentence_says_what_a_difference_means():
    torch.manual_seed(0)
    resnet, plain = BlogResNet(), BlogPlain()
    twins = A.compare_outputs(resnet, plain, torch.rand(4, 1, 28, 28))
    assert not twins.allclose  # the skips change the function the same weights compute
    assert twins.outputs_sentence(expect_equal=False).startswith("with the same weights, the two compute different")
    assert twins.outputs_sentence(expect_equal=False).endswith(": as expected")
    same = A.compare_outputs(resnet, BlogResNet(), torch.rand(4, 1, 28, 28))
    assert same.outputs_sentence(expect_equal=True) == \
        "with the same weights, the two compute the same outputs (identical): as expected"
    assert same.outputs_sentence(expect_equal=False).endswith("NOT as expected")
