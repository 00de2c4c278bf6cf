"""Models: parameter counts, torchvision parity, the plain twins really have no skips, the shortcut rule,
zero-init and the residual branch in one place each, and the one name of each model."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torchvision

from course_lib import ConfigError, build_model, count_params
from course_lib import models as M

REPO = Path(__file__).resolve().parent.parent


def test_blog_resnet_has_the_blogs_parameter_count():
    assert count_params(M.BlogResNet()) == 221_810
    assert count_params(M.BlogPlain()) == 221_810


def test_blog_cnn_follows_the_channel_plan_and_takes_digits():
    model = M.BlogCNN()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    plan = [(c.in_channels, c.out_channels) for c in convs]
    assert plan == [(1, 8), (8, 8), (8, 16), (16, 32), (32, 32), (32, 16), (16, 32), (32, 32), (32, 256), (256, 256)]
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_blog_cnn_starts_from_he_init_and_the_blogs_resnet_from_pytorchs():
    torch.manual_seed(0)
    cnn = M.BlogCNN()
    for m in cnn.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = m.weight[0].numel()
            assert m.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.25)
            assert torch.count_nonzero(m.bias) == 0
    torch.manual_seed(0)
    default = M.BlogCNN(init="pytorch")  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), nonzero biases
    first = default.features[0]
    assert first.weight.abs().max() <= 1 / 3 and torch.count_nonzero(first.bias) > 0
    torch.manual_seed(0)
    resnet = build_model("blog-resnet")  # the blog's: PyTorch's default, untouched
    torch.manual_seed(0)
    assert torch.equal(resnet.conv1.weight, torch.nn.Conv2d(1, 20, kernel_size=5, padding=2).weight)


def test_init_is_chosen_by_name_and_is_not_part_of_the_checkpoint_spec():
    he, default = build_model("blog-plain", init="he"), build_model("blog-plain")
    assert he.spec == default.spec == {"name": "blog-plain", "kwargs": {}}  # any weights load into either
    assert he.fc1.bias.abs().sum() == 0 and default.fc1.bias.abs().sum() > 0
    with pytest.raises(ConfigError, match="unknown init 'xavier'; valid: pytorch, he"):
        build_model("blog-cnn", init="xavier")
    with pytest.raises(ConfigError, match="takes only init="):
        build_model("blog-resnet", width=3)


@pytest.mark.parametrize("name", ["blog-resnet", "blog-cnn", "blog-plain", "plain-8", "residual-8", "resnet18"])
def test_every_digit_model_maps_raw_digits_to_ten_logits(name):
    model = build_model(name)
    assert model.spec["name"] == name
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def _same_weights(a, b):
    b.load_state_dict(a.state_dict())
    return a, b


def test_blog_plain_has_no_skip():
    torch.manual_seed(0)
    res, plain = _same_weights(M.BlogResNet(), M.BlogPlain())
    x = torch.rand(4, 1, 28, 28)
    assert not torch.allclose(res(x), plain(x))
    # With f's last conv zeroed, a residual block passes relu(x) = x >= 0 through; the plain one outputs 0.
    for net in (res, plain):
        for block in (net.rblock1, net.rblock2):
            torch.nn.init.zeros_(block.conv2.weight)
            torch.nn.init.zeros_(block.conv2.bias)
    h = torch.relu(torch.rand(2, 20, 14, 14))
    assert torch.equal(res.rblock1(h), h)
    assert torch.count_nonzero(plain.rblock1(h)) == 0


@pytest.mark.parametrize("depth", [2, 8, 20])
def test_depth_family_same_layers_differ_only_in_skips(depth):
    plain, residual = M.plain_net(depth), M.residual_net(depth)
    assert count_params(plain) == count_params(residual)
    assert [n for n, _ in plain.named_parameters()] == [n for n, _ in residual.named_parameters()]
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in plain.modules())
    linears = sum(isinstance(m, torch.nn.Linear) for m in plain.modules())
    assert convs + linears == depth  # He et al.'s count: conv and fc layers
    residual.load_state_dict(plain.state_dict())
    plain.eval(); residual.eval()
    x = torch.rand(3, 1, 28, 28)
    if depth == 2:
        assert torch.equal(plain(x), residual(x))  # no body, nothing to skip
    else:
        assert not torch.allclose(plain(x), residual(x))


def test_residual_zero_init_makes_each_pair_the_identity():
    net = M.residual_net(8, zero_init_residual=True).eval()
    h = torch.relu(torch.randn(2, 16, 7, 7))
    for pair in net.body:
        assert torch.equal(pair(h), h)


def test_depth_must_be_even():
    with pytest.raises(ConfigError, match="even"):
        M.plain_net(7)


@pytest.mark.parametrize("depth", sorted(M.RESNET_LAYOUTS))
def test_torchvision_parity_params_and_names(depth):
    with torch.device("meta"):  # shapes only: no memory, no time
        ours = M.ResNet(*M.RESNET_LAYOUTS[depth])
        theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    assert count_params(ours) == count_params(theirs)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in theirs.state_dict().items()]


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_parity_outputs_with_copied_weights(depth):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=7).eval()
    ours = getattr(M, f"resnet{depth}")(num_classes=7).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_projection_shortcut_only_where_shape_changes():
    net = M.resnet18()
    downsampled = [name for name, m in net.named_modules() if isinstance(m, M.BasicBlock) and m.downsample is not None]
    assert downsampled == ["layer2.0", "layer3.0", "layer4.0"]
    net50 = M.resnet50()
    assert sum(isinstance(m, M.Bottleneck) and m.downsample is not None for m in net50.modules()) == 4


def test_zero_init_residual_option():
    net = M.resnet50(zero_init_residual=True)
    assert all(float(b.bn3.weight.detach().abs().sum()) == 0 for b in net.modules() if isinstance(b, M.Bottleneck))
    other_bns = [b.bn1.weight for b in net.modules() if isinstance(b, M.Bottleneck)]
    assert all(bool((w == 1).all()) for w in other_bns)  # only the last BN of each branch
    net18 = M.resnet18(zero_init_residual=True).eval()
    block = net18.layer1[0]
    h = torch.relu(torch.randn(2, 64, 8, 8))
    assert torch.equal(block(h), h)


# --------------------------------------------------------------------------- one home for each idea


@pytest.mark.parametrize("c_in, c_out, stride, projected", [
    (16, 16, 1, False), (16, 16, 2, True), (16, 32, 1, True), (32, 16, 1, True), (16, 32, 2, True)])
def test_the_shortcut_rule_projects_exactly_where_the_shape_changes(c_in, c_out, stride, projected):
    assert M.needs_projection(c_in, c_out, stride) is projected
    sc = M.shortcut(c_in, c_out, stride)
    if not projected:
        assert sc is None  # the identity, torchvision's downsample=None
        return
    conv, bn = sc
    assert (conv.kernel_size, conv.stride, conv.in_channels, conv.out_channels, conv.bias) == (
        (1, 1), (stride, stride), c_in, c_out, None)
    assert isinstance(bn, torch.nn.BatchNorm2d) and bn.num_features == c_out
    x = torch.randn(2, c_in, 9, 9)
    assert sc(x).shape == (2, c_out, (9 - 1) // stride + 1, (9 - 1) // stride + 1)


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_takes_its_shortcuts_from_the_rule(depth):
    net = getattr(M, f"resnet{depth}")()
    for name, block in net.named_modules():
        if isinstance(block, (M.BasicBlock, M.Bottleneck)):
            c_in = block.conv1.in_channels
            c_out = (block.conv3 if isinstance(block, M.Bottleneck) else block.conv2).out_channels
            assert (block.downsample is not None) == M.needs_projection(c_in, c_out, block.stride), name


def test_the_shortcut_rule_is_written_once_in_course_lib():
    """Only models.needs_projection spells the rule out (and exercise 02's worked solution, which is its answer)."""
    pattern = re.compile(r"stride\s*!=\s*1\s+or|!=\s*\w+\s+or\s+stride\s*!=\s*1")
    hits = sorted(str(path.relative_to(REPO)) for path in (REPO / "course_lib").rglob("*.py")
                  if pattern.search(path.read_text()))
    assert hits == ["course_lib/exercises/nb02.py", "course_lib/models.py"]
    assert len(pattern.findall((REPO / "course_lib" / "models.py").read_text())) == 1


@pytest.mark.parametrize("make, last", [
    (lambda: M.BasicBlock(8, 8), "bn2"), (lambda: M.Bottleneck(16, 4), "bn3"),
    (lambda: M.ConvPair(8, residual=True), "bn2")])
def test_zero_init_last_bn_zeroes_only_the_branchs_last_bn_and_makes_the_identity(make, last):
    torch.manual_seed(0)
    block = make()
    x = torch.relu(torch.randn(2, block.conv1.in_channels, 6, 6))
    assert not torch.equal(block(x), x)
    assert M.zero_init_last_bn(block) is block
    bns = {n: m for n, m in block.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert [n for n, m in bns.items() if not m.weight.any()] == [last]
    for train in (True, False):
        assert torch.equal(block.train(train)(x), x)


def test_zero_init_last_bn_refuses_a_block_without_batchnorm():
    with pytest.raises(ConfigError, match="no BatchNorm"):
        M.zero_init_last_bn(M.ConvPair(8, batch_norm=False, residual=True))
    with pytest.raises(ConfigError, match="ResBlock"):
        M.zero_init_last_bn(M.ResBlock(4))


@pytest.mark.parametrize("make", [lambda: M.BasicBlock(6, 6), lambda: M.Bottleneck(24, 6),
                                  lambda: M.ConvPair(6, residual=True), lambda: M.ResBlock(6)])
def test_each_block_is_relu_of_its_branch_f_plus_x(make):
    torch.manual_seed(0)
    block = make().eval()
    x = torch.randn(2, 6 if not isinstance(block, M.Bottleneck) else 24, 5, 5)
    with torch.no_grad():
        assert torch.allclose(block(x), torch.relu(block.f(x) + x))


def test_basic_branch_is_the_conv_bn_relu_conv_bn_branch():
    torch.manual_seed(0)
    block = M.BasicBlock(4, 4).eval()
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        expected = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        assert torch.equal(block.f(x), expected)


# --------------------------------------------------------------------------- one name per model


@pytest.mark.parametrize("name", list(M.BLOG_MODELS))
def test_each_name_builds_its_model_in_any_case_and_records_it(name):
    torch.manual_seed(0)
    model = build_model(name)
    torch.manual_seed(0)
    shouted = build_model(f" {name.upper()} ")
    assert model.spec == shouted.spec == {"name": name, "kwargs": {}}
    a, b = model.state_dict(), shouted.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_init_variants_carry_their_init():
    assert torch.count_nonzero(build_model("blog-cnn-pytorch-init").classifier.bias) > 0  # PyTorch's default
    assert torch.count_nonzero(build_model("blog-plain-he-init").fc1.bias) == 0  # He: zero biases


@pytest.mark.parametrize("name", ["BlogResNet", "resnet19", "ResNet-18", "plain-x", "residual-", "blog"])
def test_unknown_model_names_list_the_valid_ones(name):
    with pytest.raises(ConfigError, match="valid names are: blog-cnn, .*plain-N, residual-N, resnet18"):
        build_model(name)


def test_the_family_names_build_their_depth():
    assert build_model("Plain-20").spec == {"name": "plain-20", "kwargs": {"width": 16, "batch_norm": True}}
    assert build_model("residual-8", width=4).width == 4 and build_model("resnet50").spec["name"] == "resnet50"


def test_digit_variant_has_small_stem_and_no_maxpool():
    net = build_model("resnet18")
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.conv1.in_channels == 1
    assert isinstance(net.maxpool, torch.nn.Identity)
    assert count_params(net) == count_params(M.resnet18(num_classes=10)) - 64 * 3 * 49 + 64 * 9
