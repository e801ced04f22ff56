"""A minGPT-style trainer (projects/chargpt): the configuration is a tree of defaults that
`--a.b=value` arguments override, and an argument without `=` is refused, as minGPT's
CfgNode.merge_from_args refuses it. Stdlib only."""

import sys
from ast import literal_eval


class CfgNode:
    """a lightweight configuration class inspired by yacs"""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    def merge_from_args(self, args):
        for arg in args:
            keyval = arg.split("=")
            assert len(keyval) == 2, f"expecting each override arg to be of form --arg=value, got {arg}"
            key, val = keyval
            try:
                val = literal_eval(val)
            except ValueError:
                pass
            assert key[:2] == "--"
            keys = key[2:].split(".")
            obj = self
            for k in keys[:-1]:
                obj = getattr(obj, k)
            assert hasattr(obj, keys[-1]), f"{key[2:]} is not an attribute that exists in the config"
            print(f"command line overwriting config attribute {key[2:]} with {val}")
            setattr(obj, keys[-1], val)


def get_config():
    return CfgNode(
        system=CfgNode(seed=3407, work_dir="./out/chargpt"),
        model=CfgNode(model_type="gpt-mini", n_layer=4, resid_pdrop=0.1),
        trainer=CfgNode(learning_rate=5e-4, max_iters=3, batch_size=64),
    )


if __name__ == "__main__":
    config = get_config()
    config.merge_from_args(sys.argv[1:])
    lr, drop = config.trainer.learning_rate, config.model.resid_pdrop
    for it in range(1, config.trainer.max_iters + 1):
        loss = abs(lr - 1e-3) * 1000 + drop + 1.0 / it
        print(f"iter_dt 12.34ms; iter {it}: train loss {loss:.5f}")
