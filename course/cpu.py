"""What this computer's CPU computes fast: whether it has native bfloat16 arithmetic.

Student-facing (it is in the student bundle): a ``build_model_2`` may choose its arithmetic and size by it, as the
reference does.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The x86 CPU flags (as Linux lists them in /proc/cpuinfo) of native bfloat16 arithmetic: AVX-512 BF16 (Intel
#: Cooper Lake and later, AMD Zen 4 and later) and AMX-BF16 (Intel Sapphire Rapids and later).
BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively, so that TensorFlow's oneDNN kernels run bfloat16 convolutions
    and matrix products faster than float32 (measured on an AMD EPYC with AVX-512 BF16, 2 cores: a training batch
    of the reference model_2 took 77 ms against 103-109 ms in float32; folded inference ran 1.8 times faster).

    True when ``cpuinfo`` (Linux's list of the CPU's instruction-set extensions) has one of
    :data:`BFLOAT16_CPU_FLAGS` and TensorFlow's oneDNN kernels are not switched off (``TF_ENABLE_ONEDNN_OPTS=0``).
    False where the file cannot be read (macOS, Windows). Without those instructions bfloat16 is emulated, slower
    than float32, and where oneDNN has no bfloat16 convolution at all a model computing in bfloat16 fails to predict.
    """
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return False
    return bool(flags & BFLOAT16_CPU_FLAGS) and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0"
