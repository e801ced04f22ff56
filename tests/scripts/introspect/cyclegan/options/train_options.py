from .base_options import BaseOptions


class TrainOptions(BaseOptions):
    """This class includes training options."""

    def initialize(self, parser):
        parser = BaseOptions.initialize(self, parser)
        parser.add_argument("--n_epochs", type=int, default=2, help="number of epochs with the initial learning rate")
        parser.add_argument("--lr", type=float, default=0.0002, help="initial learning rate for adam")
        parser.add_argument("--no_html", action="store_true",
                            help="do not save intermediate training results to [opt.checkpoints_dir]/[opt.name]/web/")
        self.isTrain = True
        return parser
