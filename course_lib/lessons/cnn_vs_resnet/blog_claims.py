"""The blog claim by claim (notebook 04, docs/blog_claims.md): every claim once, where the course tests it, what it
measured (read from the saved results) and the verdict, in English and Chinese."""
from __future__ import annotations

from ...results import load_result
from ...stats import mean_sd
from .claims import (EXTRA_RUNS, LENET5_ACC, PAIRS, SAVED_RUNS, _acc, blog_table_markdown, differences, p_text,
                     seed_spread)
from .protocol import combine

def _depth_losses() -> str:
    """Notebook 01's saved sweep at its longest budget: per depth, the mean final training loss over seeds, plain /
    residual, and the plain nets' range over seeds."""
    runs = (load_result("01_degradation_full") or {}).get("runs", [])
    last = max((r["steps"] for r in runs), default=0)
    losses = {}
    for r in runs:
        if r["steps"] == last:
            losses.setdefault((r["kind"], r["depth"]), []).append(r["final_train_loss"])
    depths, seeds = sorted({d for _, d in losses}), min(map(len, losses.values()), default=0)
    mean = lambda k, f: " / ".join(format(mean_sd(losses[(k, d)])[0], f) for d in depths)
    return (f"{last:,} steps, mean of {seeds} seeds: " + " / ".join(map(str, depths)) + f" layers, plain "
            f"{mean('plain', '.2f')} (ranges " + " / ".join(f"{min(losses[('plain', d)]):.2f}-"
            f"{max(losses[('plain', d)]):.2f}" for d in depths) + f"), residual {mean('residual', '.3f')}") if runs else "not saved"


def claim_table() -> list[dict]:
    """Every claim of the blog, once: rows ``{claim, where, measured, verdict}``, each an ``(English, Chinese)`` pair,
    the numbers read from the saved results (:data:`SAVED_RUNS`, :data:`EXTRA_RUNS`, notebook 01's sweep)."""
    saved, fashion, variants, fashion_default = (load_result(n) for n in SAVED_RUNS + EXTRA_RUNS)
    sp, fa = ({r["model"]: r for r in seed_spread(x)} for x in (saved, fashion))
    var = {r["model"]: r for r in seed_spread(combine(saved, variants))}
    d = {(r["a"], r["b"]): r for r in differences(combine(saved, variants), PAIRS + (
        ("blog-resnet", "blog-cnn-pytorch-init"),))}
    cnn, plain, pt = d[("blog-resnet", "blog-cnn")], d[("blog-resnet", "blog-plain")], d[("blog-resnet", "blog-cnn-pytorch-init")]
    late = seed_spread(fashion_default)[0]
    acc = lambda m, zh=False: (f"{_acc(sp[m]['accs'])}（MNIST 离线样本，3 个种子，{sp[m]['steps']:,} 步），"
                               f"{fa[m]['acc_mean']:.2%}（Fashion-MNIST，1 个种子）" if zh else f"{_acc(sp[m]['accs'])} "
                               f"(MNIST sample, 3 seeds, {sp[m]['steps']:,} steps), {fa[m]['acc_mean']:.2%} (Fashion-MNIST, 1 seed)")
    gap = lambda r, zh=False: (f"{100 * r['verdict'].difference:+.2f} {'个百分点，' if zh else 'points, '}"
                               f"{p_text(r['verdict'].p_value)}")
    esc = var["blog-plain"]["escape_steps"]
    esc = f"{min(s for s in esc if s):,}-{max(s for s in esc if s):,}"
    lenet, lead, steps = f"LeNet-5: {LENET5_ACC:.2%}", f"{100 * pt['verdict'].difference:.0f}", var['blog-cnn-pytorch-init']['steps']
    he_max = max(var['blog-plain-he-init']['escape_steps'])
    rows = [
        (("The table: epochs 10/20/30, \"训练损失\", \"验证准确率\"", "表格：第 10/20/30 轮，“训练损失”“验证准确率”"), "04 §1",
         ("its code scores the test split; each loss is one mini-batch's, printed every 100 batches; epoch 10: loss 1.2 next to 90%",
          "代码在测试集上评估；损失是每 100 个小批量打印一次的单个小批量损失；第 10 轮：损失 1.2、准确率 90%"),
         ("test accuracies called \"validation\"; losses are single mini-batches, not epoch means",
          "所谓“验证”其实是测试；损失是单个小批量的，不是整轮平均")),
        (("The CNN: channel comments and a 256·32·32 → 20 head (the course's copy of the blog)",
          "CNN：只有通道注释和 256·32·32 → 20 的输出层（课程所存的博客文本）"),
         "04 §1", ("that head needs 32×32 maps, 3×32×32 inputs, 20 classes; BlogCNN is the course's reconstruction",
                   "这个输出层要求 32×32 特征图、3×32×32 输入、20 类；BlogCNN 是课程的重建版本"),
         ("cannot run on MNIST as printed", "按原样无法在 MNIST 上运行")),
        (("CNN, epoch 30: loss 0.2, 97%", "CNN 第 30 轮：损失 0.2，准确率 97%"), "04 §2, §6",
         (f"BlogCNN (the course's reconstruction, He init): {acc('blog-cnn')}; {lenet}",
          f"BlogCNN（课程的重建版本，He 初始化）：{acc('blog-cnn', True)}；{lenet}"),
         ("not verified (no run on full MNIST); 97% is low for a small CNN", "未验证（没有完整 MNIST 上的运行）；对小 CNN 来说 97% 偏低")),
        (("ResNet, epoch 30: loss 0.04, 99.5%", "ResNet 第 30 轮：损失 0.04，准确率 99.5%"), "04 §2, §6",
         (f"BlogResNet (PyTorch's default init): {acc('blog-resnet')}", f"BlogResNet（PyTorch 默认初始化）：{acc('blog-resnet', True)}"),
         ("not verified (no run on full MNIST)", "未验证（没有完整 MNIST 上的运行）")),
        (("ResNet vs CNN: \"有所提升\" (some improvement)", "ResNet 比 CNN“有所提升”"), "04 §3, §4",
         (f"MNIST sample, CNN from He init: {gap(cnn)}; both from PyTorch's default init (the blog's): {gap(pt)}, the CNN "
          f"never left ln 10 in {steps:,} steps; on Fashion-MNIST that CNN left it by step {late['escape_steps'][0]:,} (1 seed)",
          f"MNIST 离线样本上，CNN 用 He 初始化：{gap(cnn, True)}；两者都用 PyTorch 默认初始化（博客的设置）：{gap(pt, True)}，"
          f"CNN 在 {steps:,} 步内训练损失没有降到 2.0 以下（没有离开 ln 10）；在 Fashion-MNIST 上它到第 "
          f"{late['escape_steps'][0]:,} 步才降到 2.0 以下（1 个种子）"),
         (f"depends on init: from the blog's default init the course's reconstructed CNN stalls and the ResNet leads by "
          f"{lead} points on the sample; from He init no difference is shown",
          f"取决于初始化：从博客的默认初始化出发，课程重建的 CNN 停滞不前，ResNet 在 MNIST 离线样本上领先 {lead} 个百分点；"
          "从 He 初始化出发，没有证据表明两者有差异")),
        (("The course's question, not a claim of the blog: do the skips make the difference?",
          "课程提出的问题（不是博客的说法）：差别来自残差连接吗？"), "04 §3, §4",
         (f"BlogResNet vs its plain twin (both default init): {gap(plain)}; the twin leaves ln 10 by step {esc} "
          f"(He init: {he_max} at most)",
          f"BlogResNet 相对于对照普通网络（都用默认初始化）：{gap(plain, True)}；对照普通网络到第 {esc} 步才离开 ln 10"
          f"（He 初始化：最多 {he_max} 步）"),
         ("not shown at the end; the skips shorten the start", "没有证据表明最终有差距；残差连接缩短了起步的停滞")),
        (("Degradation: deeper nets reach a higher training error, and it is not overfitting (paraphrased)",
          "退化：层数更多，训练误差反而更高，这不是过拟合（意译）"), "01 §2",
         (f"results/01_degradation_full.json, final training loss after {_depth_losses()}",
          "results/01_degradation_full.json，最终训练损失，" + _depth_losses().replace(" steps, mean of ", " 步，")
          .replace(" seeds: ", " 个种子的平均：").replace("layers, plain", "层，普通网络").replace(" (ranges ", "（范围 ")
          .replace("), residual", "），残差网络")),
         ("reproduced in kind on the MNIST sample", "在 MNIST 离线样本上定性地复现")),
        (("Vanishing / exploding gradients in very deep nets (\"例如超过30层\", e.g. over 30 layers)",
          "很深的网络（“例如超过30层”）中的梯度消失 / 梯度爆炸"), "02 §3",
         ("at init, PyTorch's default init: plain nets' gradient shrinks with depth without BatchNorm, grows with it; "
          "residual nets' changes far less", "初始化时（PyTorch 默认初始化）：普通网络的梯度没有批量归一化时随深度变小，有批量归一化时变大；残差网络变化小得多"),
         ("both seen; which one depends on normalisation; 30 layers is an example, not a claimed threshold",
          "两者都出现；出现哪一个取决于归一化；30 层是举例，不是博客声称的阈值")),
        (("Not in the blog (He et al.'s, not the blog's argument): extra layers need only learn the identity",
          "不在博客里（He 等人的论证，不是博客的）：多出的层只需学成恒等映射"),
         "01 §3", ("the argument, and the identity skip the student writes", "这个论证，以及学生自己写的恒等残差连接"),
         ("not a claim of the blog", "不是博客的说法")),
        (("Basic vs bottleneck block, told apart by whether input and output dimensions match (the course's words)",
          "基本块与瓶颈块之分，看输入输出维度是否相同（课程的转述）"),
         "02, 03 §4", ("blocks of the built ResNets counted by kind and by shortcut", "按块的种类和残差连接的种类清点已搭好的 ResNet"),
         ("mixed up: a block's shape decides identity or projection shortcut; basic or bottleneck depends on its branch",
          "混淆了：残差块是否保持形状决定用恒等映射还是投影捷径；是基本块还是瓶颈块取决于它的残差分支")),
    ]
    return [dict(zip(("claim", "where", "measured", "verdict"), (c, (w, w), m, v))) for c, w, m, v in rows]


def claim_table_markdown(lang: str = "en") -> str:
    """:func:`claim_table` as one Markdown table, ``lang`` ``"en"`` or ``"zh"``."""
    i = {"en": 0, "zh": 1}[lang]
    head = (("the blog's claim (or the course's question)", "where the course tests it", "what the course measured", "verdict"),
            ("博客的说法（或课程提出的问题）", "课程在哪里检验", "课程测得的", "判定"))[i]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row[k][i] for k in ("claim", "where", "measured", "verdict")) + " |" for row in claim_table()]
    return "\n".join(lines)


def blog_claims_page() -> str:
    """docs/blog_claims.md, to the letter: the blog's table, then :func:`claim_table_markdown` in English and Chinese."""
    return "\n".join([
        "# The blog, claim by claim · 博客的结论逐条检验", "",
        "The Chinese blog post this course starts from (the course's files do not record its title) trains a small "
        "ResNet and a \"traditional CNN\" on MNIST. Each row: its claim (its key words quoted), where the course tests "
        "it, what the course measured (from the saved results in `results/`), and the verdict. Generated by "
        "`course_lib.lessons.cnn_vs_resnet.blog_claims.blog_claims_page()`; notebook 04 shows the same table.", "",
        "本课程的出发点是一篇中文博客（课程文件里没有记下它的标题），它在 MNIST 上比较一个小 ResNet 和一个“传统 CNN”。"
        "每行依次是：博客的说法（关键词加引号）、课程在哪里检验、课程测得的结果（来自 `results/` 里保存的结果）、判定。", "",
        "## The blog's table, as it prints it · 博客的表格", "", blog_table_markdown(), "",
        "## English", "", claim_table_markdown("en"), "", "## 中文", "", claim_table_markdown("zh"), ""])
