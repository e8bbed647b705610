"""``fastdense export MODEL.npz MODEL.onnx``: a saved model as an ONNX file.

For the command line (``fastdense.cli``): `add_export_parser(commands)` adds the
subcommand to its subparsers, with `export_main` as its ``run``. A model saved by
``fastdense train`` has its standardisation statistics beside it (``MODEL.scaling.json``);
they are folded into the graph, so the ONNX model maps the raw feature columns (in the
order the JSON's ``features`` lists) to predictions in the target's units, as ``fastdense
predict`` does — unless ``--no-scaling`` is given.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DESCRIPTION = ("Write MODEL (a .npz saved by model.save or 'fastdense train') as an ONNX "
               "file computing its predictions: input 'input' (batch, features), output "
               "'output' (batch, outputs), in the model's dtype, batch size free. Needs the "
               "onnx package (pip install 'fastdense[onnx]').")
EPILOG = ("If MODEL has standardisation statistics beside it (MODEL.scaling.json, written by "
          "'fastdense train'), the graph includes them: it takes the raw feature columns in "
          "the order the JSON's 'features' lists and returns the target in its own units, "
          "as 'fastdense predict' does. --no-scaling exports the bare network.")


def add_export_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``export`` to the CLI's subparsers (``parser.add_subparsers(...)``); its
    ``run`` default is `export_main`."""
    from .onnx_export import DEFAULT_OPSET

    export = commands.add_parser("export", help="write a saved model as an ONNX file",
                                 description=DESCRIPTION, epilog=EPILOG)
    export.add_argument("model", metavar="MODEL.npz", help="a saved fastdense model")
    export.add_argument("out", metavar="MODEL.onnx", help="the ONNX file to write")
    export.add_argument("--opset", type=int, default=None,
                        help=f"ONNX opset, from 13 to the installed onnx's newest "
                             f"(default: {DEFAULT_OPSET}, for the widest runtime support)")
    export.add_argument("--no-scaling", action="store_true",
                        help="leave out MODEL.scaling.json's standardisation")
    export.set_defaults(run=export_main)
    return export


def export_main(args: argparse.Namespace) -> int:
    """The ``export`` subcommand: ``args.model``, ``args.out``, ``args.opset`` (None: the
    default), ``args.no_scaling``. Problems with the input raise the CLI's CommandError
    (one line on stderr, exit status 1, from ``fastdense.cli.main``)."""
    import fastdense as fd
    from ..cli import CommandError, scaling_path
    from .onnx_export import DEFAULT_OPSET, export_onnx

    model_path = Path(args.model)
    if not model_path.is_file():
        raise CommandError(f"no such file: {args.model}")
    try:
        model = fd.load_model(model_path)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    scaling = None
    side = scaling_path(model_path)
    if side.is_file() and not getattr(args, "no_scaling", False):
        try:
            scaling = json.loads(side.read_text())
            if not isinstance(scaling, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the standardisation statistics {side}: {exc}") \
                from None
    opset = getattr(args, "opset", None)
    try:
        export_onnx(model, args.out, opset, scaling=scaling)
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:
        where = f" with {side}" if scaling is not None else ""
        raise CommandError(f"cannot export {args.model}{where}: {exc}") from None
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    sizes = [str(model.input_dim)] + [
        f"{layer.units}" + ("" if layer.activation == "linear" else f" {layer.activation}")
        for layer in model.layers]
    extra = f"; with the standardisation of {side}" if scaling is not None else ""
    print(f"wrote {args.out}: ONNX opset {opset or DEFAULT_OPSET}, {model.dtype.name}, "
          f"{' → '.join(sizes)}{extra}")
    return 0
