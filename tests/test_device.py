"""Device and precision choices, by behaviour: what each --precision value gives, what is refused
(with a message naming the flag), and that the autocast context really computes in the dtype."""

import pytest
import torch

from recx import device

CPU = torch.device("cpu")
CUDA = torch.device("cuda")  # a device object needs no GPU; only tensors on it do


@pytest.mark.parametrize("switch", ["off", "OFF", "0", "false", "no"])
def test_cpu_bf16_off_makes_auto_fp32_even_on_a_bf16_cpu(monkeypatch, switch):
    monkeypatch.setattr(device, "_cpu_bf16_instructions", lambda: True)  # pretend AMX / AVX512-BF16
    monkeypatch.setenv("RECX_CPU_BF16", switch)
    assert device.cpu_has_fast_bf16() is False
    assert device.autocast_dtype("auto", CPU) is None
    # an explicit choice still holds
    assert device.autocast_dtype("bf16", CPU) is torch.bfloat16
    assert device.autocast_dtype("fp32", CPU) is None


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_cpu_follows_the_bf16_instructions(monkeypatch, native):
    monkeypatch.setattr(device, "_cpu_bf16_instructions", lambda: native)
    monkeypatch.setenv("RECX_CPU_BF16", "auto")
    assert device.cpu_has_fast_bf16() is native
    assert device.autocast_dtype("auto", CPU) is (torch.bfloat16 if native else None)
    monkeypatch.delenv("RECX_CPU_BF16")  # unset means auto
    assert device.autocast_dtype("auto", CPU) is (torch.bfloat16 if native else None)


def test_explicit_precisions_on_cpu(monkeypatch):
    monkeypatch.setenv("RECX_CPU_BF16", "off")
    assert device.autocast_dtype("fp32", CPU) is None
    assert device.autocast_dtype("bf16", CPU) is torch.bfloat16
    with pytest.raises(ValueError, match=r"--precision fp16") as e:
        device.autocast_dtype("fp16", CPU)
    assert "CUDA" in str(e.value)


@pytest.mark.parametrize("bf16_ok,want", [(True, torch.bfloat16), (False, torch.float16)])
def test_precisions_on_cuda(monkeypatch, bf16_ok, want):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    monkeypatch.setenv("RECX_CPU_BF16", "off")  # a CPU switch: it does not touch the GPU choice
    assert device.autocast_dtype("auto", CUDA) is want
    assert device.autocast_dtype("fp16", CUDA) is torch.float16
    assert device.autocast_dtype("bf16", CUDA) is torch.bfloat16
    assert device.autocast_dtype("fp32", CUDA) is None


@pytest.mark.parametrize("name", ["off", "float32", "bfloat16", "half", "FP32", ""])
def test_unknown_precision_is_refused_naming_the_flag(name):
    with pytest.raises(ValueError, match=r"--precision") as e:
        device.autocast_dtype(name, CPU)
    assert repr(name) in str(e.value) and "auto, fp32, bf16 or fp16" in str(e.value)


def test_resolve_device(monkeypatch):
    assert device.resolve_device("cpu") == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve_device("auto") == CPU
    assert device.resolve_device() == CPU
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=rf"--device {name}: CUDA is not available"):
            device.resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve_device("auto") == CUDA
    assert device.resolve_device("cuda:1") == torch.device("cuda", 1)


def test_autocast_computes_in_the_chosen_dtype():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 16, generator=g)
    b = torch.randn(16, 4, generator=g)
    with device.autocast(CPU, None):
        plain = a @ b
    assert plain.dtype is torch.float32
    assert torch.equal(plain, torch.mm(a, b))  # None is a no-op, not an fp32 autocast of something else
    with device.autocast(CPU, torch.bfloat16):
        low = a @ b
    assert low.dtype is torch.bfloat16
    # the inputs were rounded to bf16 (a visible difference from fp32), the result close to it
    torch.testing.assert_close(low, torch.mm(a.bfloat16(), b.bfloat16()))
    assert not torch.equal(low.float(), plain)
    torch.testing.assert_close(low.float(), plain, rtol=0.05, atol=0.1)
    # and autocast ends with the context
    assert (a @ b).dtype is torch.float32
