#!/usr/bin/env python3
"""Per-tensor SHA-256 of the `gguf` package's float32 dequantization.

For every tensor of a GGUF file, dequantize it with the `gguf` Python package
(gguf.quants.dequantize: an implementation that shares no code with tern),
hash the little-endian float32 values in file order, and write one TSV row:

    name  ggml_type  elements  sha256

tests/kernels/gguf_dequant_test.cc dequantizes the same file with tern's
scalar reference (kernels/gguf_blocks.h) and must reproduce every hash bit for
bit. Offline tooling, run by hand (never needed to build or run tern):

    python3 -m venv .venv-tools && .venv-tools/bin/pip install gguf numpy
    .venv-tools/bin/python tests/goldens/make_gguf_dequant_hashes.py \
        .cache/models/gemma-3-270m-q4_k_m.gguf > tests/goldens/gemma3_270m_q4_k_m_dequant.tsv
"""
import hashlib
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main() -> None:
    reader = GGUFReader(sys.argv[1])
    print("# name\tggml_type\telements\tsha256 of the float32 dequantization (gguf package %s)"
          % __import__("importlib.metadata").metadata.version("gguf"))
    for t in reader.tensors:
        values = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype="<f4")
        assert values.size == int(t.n_elements), t.name
        digest = hashlib.sha256(values.tobytes()).hexdigest()
        print(f"{t.name}\t{t.tensor_type.name}\t{values.size}\t{digest}")


if __name__ == "__main__":
    main()
