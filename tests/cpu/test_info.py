"""CPU model and SIMD flags are read from /proc/cpuinfo-style text of x86 and ARM machines."""

from unetkit.cpu import info

AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512bw avx512vl avx512_bf16 avx512_vnni

processor\t: 1
model name\t: another model that must not be read
"""
ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes sve sve2
CPU implementer\t: 0x41
"""


def test_x86_model_and_flags(monkeypatch):
    monkeypatch.setattr(info, "_fields", lambda: info._cpuinfo_fields(AMD))
    assert info.cpu_model() == "AMD EPYC"
    assert info.cpu_flags() == ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"]
    assert info.describe().startswith("AMD EPYC (avx2 fma avx512f")


def test_arm_features_and_a_model_from_the_platform(monkeypatch):
    monkeypatch.setattr(info, "_fields", lambda: info._cpuinfo_fields(ARM))
    monkeypatch.setattr(info.platform, "processor", lambda: "")
    monkeypatch.setattr(info.platform, "machine", lambda: "aarch64")
    assert info.cpu_flags() == ["asimd", "sve", "sve2"]
    assert info.cpu_model() == "aarch64"


def test_this_machine_is_described():
    assert info.cpu_model()
    assert "logical CPUs" in info.describe()
