"""Precision choices: "auto" follows the CPU's bf16 instructions unless RECX_CPU_BF16=off."""

import torch

from recx import device


def test_cpu_bf16_switch(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("RECX_CPU_BF16", "off")
    assert device.cpu_has_fast_bf16() is False
    assert device.autocast_dtype("auto", cpu) is None
    assert device.autocast_dtype("bf16", cpu) is torch.bfloat16  # an explicit choice still holds
    monkeypatch.setenv("RECX_CPU_BF16", "auto")
    native = device._cpu_bf16_instructions()
    assert device.cpu_has_fast_bf16() is native
    assert device.autocast_dtype("auto", cpu) is (torch.bfloat16 if native else None)
    assert device.autocast_dtype("off", cpu) is None
