"""course_lib.lessons.residual_block: the blog's blocks, the identity at init, Jacobians, gradients, shortcuts, costs."""
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from course_lib.counting import count_macs
from course_lib.errors import ConfigError
from course_lib.lessons import residual_block as bm
from course_lib.models import BasicBlock, Bottleneck, ConvPair, ResBlock, count_params, needs_projection, resnet18
from course_lib.plots import COLORS


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.relu(torch.randn(2, 16, 12, 12))


# --------------------------------------------------------------------------- the blog's blocks


def test_blog_first_block_has_exactly_the_two_defects(x):
    block = bm.BlogFirstBlock(16, 16, stride=2)
    assert hasattr(block, "main_path") and not hasattr(block, "conv1") and not hasattr(block, "conv2")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())  # as in the blog: no BatchNorm
    assert block.main_path[0].stride == (2, 2)  # as in the blog, main_path passes stride=stride to its first conv
    with pytest.raises(AttributeError, match="conv1"):
        block(x)
    assert bm.try_forward(block, x) == "AttributeError: 'BlogFirstBlock' object has no attribute 'conv1'"
    source = bm.source_of(bm.BlogFirstBlock)
    assert "residual" not in source and "F.relu(x + out)" in source and "stride=stride" in source


def test_names_fixed_the_shortcut_without_projection_fails_when_the_shape_changes(x):
    block = bm.BlogFirstBlockNamesFixed(16, 16)
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(x + block.main_path(x)))  # relu(x + conv2(relu(conv1(x))))
    assert bm.try_forward(block, x) == "ok: (2, 16, 12, 12) -> (2, 16, 12, 12)"
    for c_out, stride, dim in [(16, 2, "dimension 3"), (32, 1, "dimension 1"), (32, 2, "dimension 3")]:
        with pytest.raises(RuntimeError, match=f"must match the size.*{dim}"):
            bm.BlogFirstBlockNamesFixed(16, c_out, stride)(x)  # x is added unchanged: no projection


def test_block_kinds_shows_that_block_and_shortcut_are_separate_choices():
    from course_lib.models import resnet50
    table = bm.block_kinds({"ResNet-18": resnet18(), "ResNet-50": resnet50()})
    rows = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in table.splitlines()[2:]}
    assert rows["ResNet-18"] == [5, 3, 0, 0]  # basic + identity, basic + projection, bottleneck + ...
    assert rows["ResNet-50"] == [0, 0, 12, 4]  # every stage of ResNet-50 opens with a projection (64 -> 256 too)


@pytest.mark.parametrize("c_out, stride", [(16, 1), (16, 2), (32, 1), (32, 2)])
def test_fixed_block_is_the_reference_basic_block(x, c_out, stride):
    torch.manual_seed(1)
    block = bm.FixedBlock(16, c_out, stride)
    with torch.no_grad():  # non-trivial BN so the comparison means something
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.5, 0.5), m.running_mean.uniform_(-1, 1)
    reference = bm.as_basic_block(block)
    assert isinstance(reference, BasicBlock)
    assert count_params(block) == count_params(reference)
    assert (reference.downsample is None) == (block.shortcut is None) == (stride == 1 and c_out == 16)
    assert (block.shortcut is not None) == needs_projection(16, c_out, stride)  # the course's one rule
    for mode in ("train", "eval"):
        block.train(mode == "train"), reference.train(mode == "train")
        out = block(x)
        assert out.shape == (2, c_out, 12 // stride, 12 // stride)
        assert torch.allclose(out, reference(x), atol=1e-6)


def test_blog_resblock_keeps_the_shape():
    h = torch.relu(torch.randn(2, 20, 14, 14))
    block = ResBlock(20)
    assert block(h).shape == h.shape
    assert count_params(block) == 20 * 30 * 25 + 30 + 30 * 20 * 9 + 20


# --------------------------------------------------------------------------- identity at init


@pytest.mark.parametrize("make", [lambda: bm.FixedBlock(16, 16), lambda: BasicBlock(16, 16),
                                  lambda: Bottleneck(16, 4), lambda: ConvPair(16, residual=True)])
def test_zero_init_last_bn_makes_the_identity(x, make):
    torch.manual_seed(0)
    block = make()
    assert not torch.allclose(block(x), x)
    bm.zero_init_last_bn(block)
    for mode in (True, False):
        block.train(mode)
        assert torch.equal(block(x), x)
    z = torch.randn(2, 16, 12, 12)  # with negative entries: relu(z), not z
    assert torch.equal(block(z), torch.relu(z))


def test_source_of_drops_the_docstring():
    text = bm.source_of(bm.BlogFirstBlock)
    assert text.startswith("class BlogFirstBlock(nn.Module):") and "self.conv1(x)" in text
    assert '"""' not in text and "Defect" not in text


# --------------------------------------------------------------------------- Jacobians


def test_block_jacobian_is_identity_plus_df_dx():
    block = bm.small_block(channels=2, seed=0)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    J = bm.block_jacobians(block, x)
    assert J["J_sum"].shape == (50, 50)
    assert J["J_f"].norm() > 0.5  # f is not trivial, so the check below can fail
    assert torch.allclose(J["J_sum"], J["I"] + J["J_f"], atol=1e-12, rtol=0)
    assert not torch.allclose(J["J_sum"], J["J_f"], atol=1e-3)
    assert 0 < J["mask"].mean() < 1
    assert torch.allclose(J["J_block"], J["mask"][:, None] * (J["I"] + J["J_f"]), atol=1e-12, rtol=0)


def test_two_blocks_multiply_identity_plus_jacobians():
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    T = bm.two_block_jacobians(bm.small_block(seed=0), bm.small_block(seed=1), x)
    I, J1, J2 = T["I"], T["J1"], T["J2"]
    assert torch.allclose(T["J_chain"], (I + J2) @ (I + J1), atol=1e-12, rtol=0)
    assert torch.allclose(T["J_chain"], I + J1 + J2 + J2 @ J1, atol=1e-12, rtol=0)
    assert not torch.allclose(T["J_chain"], I + J1 + J2, atol=1e-3)  # the cross term is real


def test_plot_jacobians_saves_png(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    block = bm.small_block()
    J = bm.block_jacobians(block, torch.randn(1, 2, 3, 3, dtype=torch.float64))
    fig = bm.plot_jacobians(J, name="02_test_jacobian")
    assert (tmp_path / "02_test_jacobian.png").stat().st_size > 1000
    assert all("colour scale" in ax.get_title() for ax in fig.axes[:3])  # each panel names its own scale
    plt.close(fig)


# --------------------------------------------------------------------------- gradient through depth


def test_gradient_vs_depth_plain_vanishes_residual_does_not(tmp_path, monkeypatch):
    torch.manual_seed(0)
    digits, labels = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    no_bn = bm.gradient_vs_depth(digits, labels, blocks=(1, 8), seeds=(0, 1), batch_norm=False)
    assert len(no_bn["plain"]) == 2 and len(no_bn["plain"][0]) == 2
    plain = [bm.geometric_mean(n) for n in no_bn["plain"]]
    residual = [bm.geometric_mean(n) for n in no_bn["residual"]]
    assert plain[1] < 1e-3 * plain[0]  # 7 more blocks: orders of magnitude smaller
    assert 0.2 < residual[1] / residual[0] < 5  # the identity path keeps it level
    assert 0 < bm.per_block_factor(no_bn, "plain") < 0.5
    with_bn = bm.gradient_vs_depth(digits, labels, blocks=(1, 8), seeds=(0,), batch_norm=True)
    table = bm.format_gradient_table([no_bn, with_bn])
    assert "plain +BN" in table and len(table.splitlines()) == 4
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    fig = bm.plot_gradient_vs_depth([no_bn, with_bn], name="02_test_gradient")
    assert (tmp_path / "02_test_gradient.png").stat().st_size > 1000
    assert fig.axes[0].get_xscale() == "linear" and fig.axes[0].get_yscale() == "log"  # a constant factor: a line
    assert [ax.get_title() for ax in fig.axes] == ["without BatchNorm", "with BatchNorm"]
    assert "own y range" in fig._suptitle.get_text()
    colours = {line.get_label().split(":")[0]: line.get_color() for line in fig.axes[0].get_lines()}
    assert colours == {"plain": COLORS["plain"], "residual": COLORS["residual"]}  # the course's colour table
    plt.close(fig)


def test_same_seed_same_weights_plain_and_residual():
    digits, labels = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    a = bm.gradient_vs_depth(digits, labels, blocks=(2,), seeds=(3,))
    b = bm.gradient_vs_depth(digits, labels, blocks=(2,), seeds=(3,))
    assert a == b


def test_geometric_mean():
    assert bm.geometric_mean([1e-10, 1e10]) == pytest.approx(1.0)
    assert bm.geometric_mean([0.0, 1.0]) == 0.0


# --------------------------------------------------------------------------- shortcuts


def test_zero_pad_shortcut_option_a(x):
    shortcut = bm.ZeroPadShortcut(16, 32, stride=2)
    out = shortcut(x)
    assert out.shape == (2, 32, 6, 6)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert bool((out[:, 16:] == 0).all())
    assert count_params(shortcut) == 0
    odd = shortcut(torch.randn(1, 16, 7, 7))  # ceil(7/2) = 4, as a stride-2 conv gives
    assert odd.shape == (1, 32, 4, 4) == bm.projection_shortcut(16, 32, 2)(torch.randn(1, 16, 7, 7)).shape
    with pytest.raises(ConfigError, match="projection"):
        bm.ZeroPadShortcut(32, 16)


def test_projection_shortcut_option_b_cost():
    shortcut = bm.projection_shortcut(64, 128, 2)
    assert count_params(shortcut) == 64 * 128 + 2 * 128
    assert count_macs(shortcut, (64, 28, 28)) == 64 * 128 * 14 * 14
    n, params = bm.projection_params(resnet18())
    assert (n, params) == (3, (64 * 128 + 256) + (128 * 256 + 512) + (256 * 512 + 1024))


# --------------------------------------------------------------------------- costs


@pytest.mark.parametrize("kind, c_in, c_out, stride", [
    ("basic", 16, 16, 1), ("basic", 16, 32, 2), ("basic", 16, 16, 2), ("bottleneck", 64, 256, 1),
    ("bottleneck", 256, 256, 1), ("bottleneck", 256, 512, 2)])
def test_build_block_takes_its_shortcut_from_the_rule(kind, c_in, c_out, stride):
    block = bm.build_block(kind, c_in, c_out, stride)
    assert (block.downsample is not None) == needs_projection(c_in, c_out, stride)
    assert block(torch.randn(1, c_in, 8, 8)).shape == (1, c_out, 8 // stride, 8 // stride)


@pytest.mark.parametrize("kind, c_in, c_out, stride, size", [
    ("basic", 64, 64, 1, 56), ("basic", 64, 128, 2, 56), ("basic", 16, 32, 2, 7), ("basic", 8, 16, 1, 9),
    ("bottleneck", 256, 256, 1, 56), ("bottleneck", 64, 256, 1, 56), ("bottleneck", 256, 512, 2, 56),
    ("bottleneck", 32, 64, 2, 9),
])
def test_cost_formula_matches_the_counter(kind, c_in, c_out, stride, size):
    (row,) = bm.block_cost_table([(kind, c_in, c_out, stride)], size=size)
    assert row["params_formula"] == row["params_counted"]
    assert row["macs_formula"] == row["macs_counted"]
    assert row["macs_formula"] > 0


def test_cost_formula_known_values():
    assert bm.conv_cost(3, 8, 3, 10, 10) == (216, 21600)
    assert bm.conv_cost(3, 8, 3, 10, 10, bias=True)[0] == 224
    assert bm.basic_block_cost(256, 256, 56, 56) == (1_180_672, 1_179_648 * 56 * 56)
    assert bm.bottleneck_cost(256, 64, 56, 56) == (70_400, 69_632 * 56 * 56)
    text = bm.format_cost_table(bm.block_cost_table([("basic", 8, 8, 1)], size=4))
    assert "basic 8->8" in text and "1,184" in text  # 2*9*64 + 4*8


def test_shortcut_macs_handles_parameter_free_shortcuts():
    assert bm.shortcut_macs(bm.ZeroPadShortcut(16, 32, 2), (16, 8, 8)) == 0
    assert bm.shortcut_macs(bm.projection_shortcut(16, 32, 2), (16, 8, 8)) == 16 * 32 * 4 * 4


# --------------------------------------------------------------------------- pre-activation


@pytest.mark.parametrize("c_out, stride", [(16, 1), (16, 2), (32, 1), (32, 2)])
def test_preact_block_shapes_parameters_and_zero_init(c_out, stride):
    torch.manual_seed(0)
    z = torch.randn(2, 16, 8, 8)  # negative entries: a pre-activation block applies nothing after the sum
    block = bm.PreActBlock(16, c_out, stride)
    assert block(z).shape == (2, c_out, 8 // stride, 8 // stride)
    projection = 16 * c_out if needs_projection(16, c_out, stride) else 0
    assert count_params(block) == 2 * 16 + 9 * 16 * c_out + 2 * c_out + 9 * c_out * c_out + projection
    assert (block.shortcut is None) == (not needs_projection(16, c_out, stride))
    if c_out == 16 and stride == 1:
        zeroed = bm.PreActBlock(16, 16, zero_init=True)
        for mode in (True, False):
            assert torch.equal(zeroed.train(mode)(z), z)
        assert not torch.allclose(block(z), z)
        with torch.no_grad():
            assert torch.allclose(block(z), z + block.f(z))


def test_preact_net_and_the_original_vs_preact_sweep(tmp_path, monkeypatch):
    net = bm.preact_net(10, width=8)
    assert len(net.body) == 4 and net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ConfigError, match="BatchNorm"):
        bm.preact_net(10, batch_norm=False)
    with pytest.raises(ConfigError, match="even"):
        bm.preact_net(9)
    torch.manual_seed(0)
    digits, labels = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    at_input = bm.gradient_vs_depth(digits, labels, blocks=(1, 16), seeds=(0,), nets=bm.ORIGINAL_VS_PREACT)
    sweep = bm.through_blocks(at_input)
    assert sweep["kinds"] == ["residual", "preact"] and sweep["through"] and not at_input["through"]
    g_in, g_out = bm.gradient_through_body(bm.preact_net(6).double(), digits.double(), labels)
    assert g_in > 0 and g_out > 0
    # through 16 blocks, the original block scales the gradient up more than the pre-activation block does
    assert sweep["residual"][1][0] > sweep["preact"][1][0] > 1
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    fig = bm.plot_gradient_vs_depth([sweep], name="02_test_preact")
    colours = {line.get_label().split(":")[0]: line.get_color() for line in fig.axes[0].get_lines()
               if ":" in line.get_label()}
    assert colours == {"residual": COLORS["residual"], "preact": COLORS["preact"]}
    assert "through the L blocks" in fig.axes[0].get_title()
    plt.close(fig)
