"""PyTorch side of the training benchmark (`cargo bench --bench training`).

Builds the same network as shiftbench's `ResNet` (3x3 stride-2 stem, basic blocks with
post-activation BatchNorm, 1x1 projection shortcuts, global average pooling, linear head) and
times the same work on the same thread count: one training epoch (uint8 batch -> normalised
float, forward, label-smoothed cross entropy, backward, SGD with momentum and weight decay) and
evaluation (no gradients, eval-mode BatchNorm). Prints one JSON object per configuration on
stdout so the Rust bench can put the two side by side.

Usage: python3 benches/pytorch_reference.py --width 32 --blocks 1 --stages 3 --batch 128 \
           --images 1024 --size 32 --threads 2 --runs 3
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, kernel, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    )


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, 1)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        y = F.relu(self.conv1(x))
        return F.relu(self.conv2(y) + identity)


class Net(nn.Module):
    def __init__(self, width, blocks, stages, classes):
        super().__init__()
        self.stem = conv_bn(3, width, 3, 2)
        layers, cin = [], width
        for s in range(stages):
            cout = width << s
            for b in range(blocks):
                layers.append(Block(cin, cout, 2 if s > 0 and b == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        h = self.blocks(F.relu(self.stem(x)))
        return self.fc(h.mean(dim=(2, 3)))


def main():
    p = argparse.ArgumentParser()
    for name, default in [("width", 32), ("blocks", 1), ("stages", 3), ("batch", 128), ("images", 1024),
                          ("size", 32), ("threads", 2), ("runs", 3), ("classes", 10)]:
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC memory format (shiftbench's layout); NCHW otherwise")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    images = torch.randint(0, 256, (a.images, 3, a.size, a.size), dtype=torch.uint8)
    labels = torch.randint(0, a.classes, (a.images,))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255

    def batches():
        for i in range(0, a.images, a.batch):
            x = ((images[i:i + a.batch].float() - mean) / std).contiguous(memory_format=fmt)
            yield x, labels[i:i + a.batch]

    train_rates, eval_rates = [], []
    for run in range(a.runs + 1):  # the first run warms oneDNN's kernel caches and is dropped
        model = Net(a.width, a.blocks, a.stages, a.classes).to(memory_format=fmt)
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
        opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                              lr=0.1, momentum=0.9)
        model.train()
        t = time.perf_counter()
        for x, y in batches():
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        train_time = time.perf_counter() - t
        model.eval()
        t = time.perf_counter()
        with torch.inference_mode():
            for x, _ in batches():
                model(x).argmax(dim=1)
        eval_time = time.perf_counter() - t
        if run > 0:
            train_rates.append(a.images / train_time)
            eval_rates.append(a.images / eval_time)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": a.threads,
        "memory_format": "channels_last" if a.channels_last else "nchw",
        "train_images_per_s": statistics.median(train_rates),
        "eval_images_per_s": statistics.median(eval_rates),
        "params": sum(p.numel() for p in Net(a.width, a.blocks, a.stages, a.classes).parameters()),
    }))


if __name__ == "__main__":
    main()
