"""course.cpu: whether the CPU computes bfloat16 natively, read from the flags Linux lists."""

from __future__ import annotations

import pytest


@pytest.fixture
def default_onednn(monkeypatch):
    """oneDNN as TensorFlow starts it: on, and without an instruction-set limit."""
    from course.cpu import ONEDNN_ISA_LIMIT_VARIABLES

    for variable in ("TF_ENABLE_ONEDNN_OPTS", *ONEDNN_ISA_LIMIT_VARIABLES):
        monkeypatch.delenv(variable, raising=False)


def test_cpu_has_bfloat16_reads_the_cpus_flags(tmp_path, monkeypatch, default_onednn):
    from course.cpu import cpu_has_bfloat16

    cpuinfo = tmp_path / "cpuinfo"
    for flags, expected in (
        ("fpu sse2 avx2 avx512f avx512_bf16", True),
        ("fpu sse2 avx2 amx_bf16 amx_tile", True),
        ("fpu sse2 avx2 avx512f avx512_vnni", False),
    ):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        assert cpu_has_bfloat16(cpuinfo) is expected, f"expected {expected} for the flags {flags!r}"
    assert cpu_has_bfloat16(tmp_path / "missing") is False, "expected False where the CPU's flags cannot be read"
    cpuinfo.write_text("flags\t\t: avx512_bf16\n")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert cpu_has_bfloat16(cpuinfo) is False, "expected False with TensorFlow's oneDNN kernels switched off"


def test_cpu_has_bfloat16_follows_onednns_instruction_set_limit(tmp_path, monkeypatch, default_onednn):
    from course.cpu import cpu_has_bfloat16, onednn_isa_limit

    assert onednn_isa_limit() is None, f"expected no limit with neither variable set, found {onednn_isa_limit()!r}"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: avx2 avx512f avx512_vnni avx512_bf16\n")
    for variable, limit, expected in (
        ("ONEDNN_MAX_CPU_ISA", "AVX2", False),
        ("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni", False),
        ("DNNL_MAX_CPU_ISA", "AVX512_CORE", False),
        ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16", True),
        ("ONEDNN_MAX_CPU_ISA", "ALL", True),
    ):
        monkeypatch.setenv(variable, limit)
        assert cpu_has_bfloat16(cpuinfo) is expected, f"expected {expected} with {variable}={limit}"
        monkeypatch.delenv(variable)
