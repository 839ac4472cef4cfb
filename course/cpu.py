"""What this computer's CPU computes fast: whether it has native bfloat16 arithmetic.

The benchmarks use it to measure inference where bfloat16 pays (``course.inference.in_bfloat16``) and to report
oneDNN's instruction-set limit. The reference networks do not: they are float32 on every CPU, so that the same
code builds the same model for every student.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The x86 CPU flags (as Linux lists them in /proc/cpuinfo) of native bfloat16 arithmetic: AVX-512 BF16 (Intel
#: Cooper Lake and later, AMD Zen 4 and later) and AMX-BF16 (Intel Sapphire Rapids and later).
BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})

#: The values of oneDNN's instruction-set limit (``ONEDNN_MAX_CPU_ISA``, older name ``DNNL_MAX_CPU_ISA``; the names
#: of oneDNN's ``dnnl_cpu_isa_t``) that leave out bfloat16 arithmetic: with one of them set, oneDNN uses no bfloat16
#: instructions even where the CPU has them (``AVX2_VNNI_2``'s bfloat16 support is a preview: it counts as none).
ISA_LIMITS_WITHOUT_BFLOAT16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
)

#: The environment variables that set oneDNN's instruction-set limit: the current name first, then the older one.
ONEDNN_ISA_LIMIT_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def onednn_isa_limit() -> str | None:
    """oneDNN's instruction-set limit as set in the environment (``ONEDNN_MAX_CPU_ISA``, or its older name
    ``DNNL_MAX_CPU_ISA``), upper-cased, e.g. ``"AVX2"``; None where neither is set."""
    for variable in ONEDNN_ISA_LIMIT_VARIABLES:
        if os.environ.get(variable, "").strip():
            return os.environ[variable].strip().upper()
    return None


def cpu_has_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively, so that TensorFlow's oneDNN kernels run bfloat16 convolutions
    and matrix products faster than float32 (measured on an AMD EPYC with AVX-512 BF16, 2 cores: a training batch
    of an earlier, bfloat16 model_2 took 77 ms against 103-109 ms in float32; folded inference ran 1.8 times
    faster).

    True when ``cpuinfo`` (Linux's list of the CPU's instruction-set extensions) has one of
    :data:`BFLOAT16_CPU_FLAGS`, TensorFlow's oneDNN kernels are not switched off (``TF_ENABLE_ONEDNN_OPTS=0``) and
    oneDNN is not limited to an instruction set without bfloat16 (:func:`onednn_isa_limit`, e.g. ``AVX2``: one
    of :data:`ISA_LIMITS_WITHOUT_BFLOAT16`). False where the file cannot be read (macOS, Windows). Without those
    instructions bfloat16 is emulated, slower than float32, and where oneDNN has no bfloat16 convolution at all
    (measured: ``ONEDNN_MAX_CPU_ISA=AVX2``) a model computing in bfloat16 fails to predict.
    """
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        return False
    if onednn_isa_limit() in ISA_LIMITS_WITHOUT_BFLOAT16:
        return False
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return False
    return bool(flags & BFLOAT16_CPU_FLAGS)
