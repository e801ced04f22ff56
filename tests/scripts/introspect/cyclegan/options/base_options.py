import argparse


class BaseOptions:
    """This class defines options used during both training and test time."""

    def __init__(self):
        self.initialized = False

    def initialize(self, parser):
        """Define the common options that are used in both training and test."""
        parser.add_argument("--dataroot", default="./datasets/maps", help="path to images")
        parser.add_argument("--name", type=str, default="experiment_name", help="name of the experiment")
        parser.add_argument("--gpu_ids", type=str, default="0", help="gpu ids: e.g. 0  0,1,2, 0,2. use -1 for CPU")
        parser.add_argument("--netG", type=str, default="resnet_9blocks",
                            choices=["resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128"],
                            help="specify generator architecture")
        parser.add_argument("--no_dropout", action="store_true", help="no dropout for the generator")
        parser.add_argument("--serial_batches", action="store_true",
                            help="if true, takes images in order to make batches, otherwise takes them randomly")
        self.initialized = True
        return parser

    def parse(self):
        parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        parser = self.initialize(parser)
        opt, _ = parser.parse_known_args()
        self.opt = opt
        return self.opt
