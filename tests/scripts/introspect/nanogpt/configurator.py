# Poor Man's Configurator, as in nanoGPT: --key=value overrides a module-level global.
import sys
from ast import literal_eval

for arg in sys.argv[1:]:
    assert arg.startswith("--")
    key, val = arg.split("=")
    key = key[2:]
    if key in globals():
        try:
            attempt = literal_eval(val)
        except (SyntaxError, ValueError):
            attempt = val
        assert type(attempt) is type(globals()[key])
        print(f"Overriding: {key} = {attempt}")
        globals()[key] = attempt
    else:
        raise ValueError(f"Unknown config key: {key}")
