"""A trainer in the style of pytorch-CycleGAN-and-pix2pix's train.py: the parser lives in an
options/ package (BaseOptions, TrainOptions) and the script never names argparse itself."""

import os

from options.train_options import TrainOptions

if __name__ == "__main__":
    opt = TrainOptions().parse()  # get training options
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "latest_net_G.pth"), "w") as fh:
        fh.write(opt.name)
    for epoch in range(1, opt.n_epochs + 1):
        print(f"(epoch: {epoch}, iters: 100, time: 0.012, data: 0.001) G_GAN: 0.712 D_real: 0.301")
