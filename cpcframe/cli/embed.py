"""``cpcframe embed RUN_DIR INPUTS... --out FILE [--level latent|context] [--layout per-file]``.

Reads each input with the run's view sampler (audio files, images, text files, as the
recipe's plugin knows them), encodes it with the trained model and writes one array per
input key into ``FILE``: NumPy ``.npz`` or ``.safetensors`` by the extension. With
``--layout per-file``, ``--out`` is a folder that gets one ``KEY.npy`` per input, in the
inputs' folder tree, and a ``features.json`` sidecar (level, frame step): the layout of
the ZeroSpeech and libri-light ABX tools.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("embed", parents=parents, help="write a trained model's features of input files",
                       description="Write a trained model's features of input files (one array per input "
                                   "key, without batch axis) to a .npz or .safetensors file.")
    p.add_argument("run_dir", help="a run directory written by cpcframe run (its recipe and weights), an "
                                   "exported folder, or a Hugging Face Hub id ORG/NAME")
    p.add_argument("--revision", help="with a Hub id: the branch, tag or commit")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input files, read by the recipe's view sampler")
    p.add_argument("--out", required=True, help="output file: features.npz or features.safetensors "
                   "(a folder with --layout per-file)")
    p.add_argument("--level", choices=("latent", "context"), default="context",
                   help="encoder output z (latent) or context model output c (context, default)")
    p.add_argument("--layout", choices=("file", "per-file"), default="file",
                   help="one file of arrays (default), or one KEY.npy per input mirroring the inputs' "
                        "folders, with a features.json sidecar (frame step, level)")
    p.add_argument("--batch-size", type=int, default=16, help="inputs of equal shape (or pieces of one "
                   "long sequence) encoded together")
    p.add_argument("--chunk", type=int, default=None, metavar="N",
                   help="sequence inputs (audio): encode a long input in pieces of N samples, as the probes "
                        "do (default: the training window, the speech probe's encoding; 0 = whole files; "
                        "64000 = cpcframe abx's default)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: the run's train.threads; 0 = the free cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cpcframe.errors import UserError
    from cpcframe._version import __version__
    from cpcframe.export.hub import locate_model
    from cpcframe.runs.embedding import embed_files, resolve_chunk
    from cpcframe.runs.features import check_features_path, frame_step, save_features, save_per_file
    from cpcframe.runs.loading import load_run
    from cpcframe.runtime import resolve_device

    per_file = args.layout == "per-file"
    out = Path(args.out) if per_file else check_features_path(args.out)  # before the (slow) work
    if per_file and out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; --layout per-file writes into a folder")
    folder = locate_model(args.run_dir, args.revision)  # a Hub id: its cached snapshot
    from cpcframe.cli.probe import run_threads

    run_threads(folder, args.threads)
    loaded = load_run(folder, device=resolve_device(args.device, setting="--device"))
    chunk = resolve_chunk(loaded.view_sampler(), args.chunk)
    result = embed_files(loaded, args.inputs, level=args.level, batch_size=args.batch_size, chunk=chunk)
    metadata = {"run_dir": str(Path(args.run_dir).resolve()) if folder == Path(args.run_dir) else args.run_dir,
                "level": args.level,
                "cpcframe_version": __version__}
    if chunk is not None:
        metadata["chunk"] = chunk
    if per_file:
        step, source = frame_step(loaded.model, loaded.view_sampler())
        save_per_file(out, result.features, result.sources,
                      {**metadata, "frame_step": step, "frame_step_source": source})
    else:
        save_features(out, result.features, metadata=metadata)
    files = len(set(result.sources.values()))
    print(f"embedded {files} file(s) -> {len(result.features)} array(s) ({args.level}) -> {out}")
    if result.skipped:
        print("skipped inputs: " + ", ".join(f"{k}: {v}" for k, v in result.skipped.items()))
    return 0
