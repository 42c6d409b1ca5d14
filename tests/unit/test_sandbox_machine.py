"""The sandbox_machine module finds the node's init among every process, orphan or not."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.customer_streaming.pipeline.plugins.modules import sandbox_machine


def fake_process(proc: Path, pid: int, environ: list, nspid: str, ppid: int = 1) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "environ").write_bytes(b"\0".join(item.encode() for item in environ) + b"\0")
    (folder / "status").write_text("Name:\tsystemd\nPPid:\t%d\nNSpid:\t%s\n" % (ppid, nspid))


def test_finds_only_the_init_of_this_root(tmp_path):
    proc = tmp_path / "proc"
    root = tmp_path / "rootfs"
    root.mkdir()
    mine = "CSP_SANDBOX_ROOT=%s" % root
    fake_process(proc, 100, ["container=systemd-nspawn", mine], "100\t1", ppid=99)
    fake_process(proc, 101, ["container=systemd-nspawn", mine], "101\t42")  # a child inherits the variable
    fake_process(proc, 200, ["container=systemd-nspawn", "CSP_SANDBOX_ROOT=/elsewhere"], "200\t1")
    fake_process(proc, 300, ["PATH=/usr/bin"], "300")
    (proc / "self").mkdir()
    assert sandbox_machine.find_inits(str(root), proc=str(proc)) == [100]
    assert sandbox_machine.parent_pid(100, proc=str(proc)) == 99
    (proc / "99").mkdir()
    (proc / "99" / "comm").write_text("systemd-nspawn\n")
    assert sandbox_machine.process_name(99, proc=str(proc)) == "systemd-nspawn"
    assert sandbox_machine.process_name(12345, proc=str(proc)) is None


def test_nspawn_command_registers_only_with_a_systemd_host(tmp_path):
    without = sandbox_machine.nspawn_command(str(tmp_path), "node", host_systemd=False)
    with_systemd = sandbox_machine.nspawn_command(str(tmp_path), "node", host_systemd=True)
    assert without[:2] == ["systemd-nspawn", "--boot"]
    assert "--register=no" in without and "--keep-unit" in without
    assert "--register=no" not in with_systemd and "--keep-unit" not in with_systemd
    assert "--setenv=CSP_SANDBOX_ROOT=%s" % tmp_path in without
