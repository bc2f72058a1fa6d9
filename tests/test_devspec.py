"""xl.cfg's device strings (xl/devspec.py): tables of what xl makes of them,
then the same strings through the real libxlutil and libxenlight
(tests/c/devspec_probe.c), whose answers ours must equal."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from tests.libxl_probe import libxl_toolchain

from xl.devspec import (
    DevSpecError, DiskSpec, parse_disk, parse_rate, parse_uuid, parse_vif, parse_vtpm,
    vdev_to_devid,
)

TESTS = Path(__file__).resolve().parent
PROBE = TESTS / "c" / "devspec_probe.c"
BUILD = TESTS / ".build"

# ---------------------------------------------------------------------------
# disks

DISKS = [
    # the positional form: target, format, vdev, access
    ("/img/a.raw,raw,xvda,rw", dict(pdev_path="/img/a.raw", format="raw", vdev="xvda", readwrite=1)),
    ("/img/a.qcow2,qcow2,xvdb,r", dict(pdev_path="/img/a.qcow2", format="qcow2", vdev="xvdb", readwrite=0)),
    ("/img/a.vhd,vhd,xvdc,ro", dict(format="vhd", readwrite=0)),
    ("/img/a.raw,raw,xvda,w", dict(readwrite=1)),
    ("/img/a.raw,raw,xvda", dict(readwrite=1, format="raw")),
    ("/img/a.raw,,xvda", dict(format="raw", vdev="xvda")),
    ("/img/a.raw,raw,xvda,", dict(readwrite=1)),
    ("/img/a.qed,qed,xvda", dict(format="qed")),
    # the old prefixes: the format slot goes away
    ("phy:/dev/vg/root,xvda,w", dict(pdev_path="/dev/vg/root", vdev="xvda", format="raw", readwrite=1)),
    ("file:/img/a.raw,xvda,r", dict(pdev_path="/img/a.raw", vdev="xvda", readwrite=0)),
    ("tap:aio:/img/a.raw,xvda,w", dict(pdev_path="/img/a.raw", vdev="xvda")),
    ("qcow2:/img/a.qcow2,xvda,w", dict(pdev_path="/img/a.qcow2", format="qcow2")),
    ("iscsi:iqn.2001-05.com.example:disk1,xvda,w",
     dict(pdev_path="iqn.2001-05.com.example:disk1", script="block-iscsi")),
    ("drbd:r0,xvda,w", dict(pdev_path="r0", script="block-drbd")),
    # keywords, in any order; target= last, taking commas too
    ("format=raw, vdev=xvda, access=rw, target=/img/a,b.raw",
     dict(pdev_path="/img/a,b.raw", vdev="xvda", format="raw", readwrite=1)),
    ("vdev=xvdb, access=ro, target=/img/b.raw,", dict(pdev_path="/img/b.raw", readwrite=0)),
    ("format=vhd,/img/a.vhd,xvda", dict(format="vhd", pdev_path="/img/a.vhd", vdev="xvda")),
    ("backend=storage, vdev=xvda, target=/img/a.raw", dict(backend_domname="storage")),
    ("backendtype=phy,vdev=xvda,target=/dev/sdb", dict(backend="phy")),
    ("specification=virtio,vdev=xvda,target=/x", dict(specification="virtio")),
    ("script=block-drbd,vdev=xvda,target=r0", dict(script="block-drbd")),
    ("discard,vdev=xvda,target=/x", dict(discard_enable=True)),
    ("no-discard,vdev=xvda,target=/x", dict(discard_enable=False)),
    ("vdev=xvda,target=/x", dict(discard_enable=None, direct_io_safe=False)),
    ("direct-io-safe,vdev=xvda,target=/x", dict(direct_io_safe=True)),
    ("colo,colo-host=h,colo-port=9000,vdev=xvda,target=/x",
     dict(colo_enable=True, colo_host="h", colo_port=9000)),
    # cdroms are read-only and removable, and may be empty
    ("vdev=xvdc, devtype=cdrom, target=/isos/x.iso",
     dict(is_cdrom=1, removable=1, readwrite=0, format="raw", pdev_path="/isos/x.iso")),
    ("/isos/x.iso,raw,hdc:cdrom,r", dict(is_cdrom=1, vdev="hdc")),
    (",,hdc:cdrom,r", dict(pdev_path="", vdev="hdc", format="empty", is_cdrom=1, removable=1)),
    ("vdev=hdc,cdrom", dict(pdev_path=None, format="empty", is_cdrom=1, removable=1)),
    ("/isos/x.iso,raw,hdc:cdrom,rw", dict(readwrite=0)),
    ("/img/a.raw,raw,hda:disk", dict(vdev="hda", is_cdrom=0)),
    ("devtype=disk,vdev=xvda,target=/x", dict(is_cdrom=0)),
    # blanks before a parameter go, blanks before a comma stay
    ("  /img/a.raw , raw, xvda, rw", dict(pdev_path="/img/a.raw ", format="raw", vdev="xvda")),
    ("\tvdev=xvda,\ttarget=/x", dict(vdev="xvda", pdev_path="/x")),
    # in Xen 4.17's scanner `trusted` is just another positional parameter
    ("/img/a.raw,raw,trusted", dict(vdev="trusted")),
    # a '=' with nothing after it ends the string quietly
    ("/img/a.raw,raw,xvda,=", dict(vdev="xvda", readwrite=1)),
]


@pytest.mark.parametrize("spec, fields", DISKS, ids=[s for s, _ in DISKS])
def test_disk_strings_read_as_xl_reads_them(spec, fields):
    disk = parse_disk(spec)
    for name, value in fields.items():
        assert getattr(disk, name) == value, name


DISK_ERRORS = [
    ("/img/a.raw,raw", "no vdev specified"),
    ("", "no vdev specified"),
    ("target=/x,vdev=xvda,", "no vdev specified"),     # target= took it all
    ("vdev=xvda", "no target specified (and device not removable)"),
    ("/img/a.raw,bogus,xvda", "unknown value for format: near `bogus'"),
    ("/img/a.raw,xvda:cdrom", "unknown value for format: near `xvda:cdrom'"),
    ("/img/a.raw,raw,xvda,rx", "unknown value for access: near `rx'"),
    ("/a,raw,xvda,rw,extra", "too many positional parameters: near `extra'"),
    ("foo:/a,xvda", "unknown deprecated disk prefix: near `foo:'"),
    ("vdev=xvda,vdev=xvdb,target=/a", "vdev respecified: near `xvdb'"),
    ("format=raw,format=qcow2,vdev=xvda,target=/a", "format respecified: near `qcow2'"),
    ("format=raw,/a,qcow2,xvda", "unknown value for access: near `xvda'"),
    ("devtype=floppy,vdev=xvda,target=/a", "unknown value for type: near `devtype=floppy,'"),
    ("size=10G,vdev=xvda,target=/a", "unknown parameter: near `size=1'"),
    ("/a,raw,xvda,=x", "bad disk syntax: near `=x'"),
    ("/a,raw,Xvda=1", "bad disk syntax: near `=1'"),
    ("backendtype=nfs,vdev=xvda,target=/a", "unknown value for backendtype: near `nfs'"),
    ("specification=scsi,vdev=xvda,target=/a", "unknown value for specification: near `scsi'"),
    ("colo-port=abc,vdev=xvda,target=/a", "unknown value for colo_port: near `abc'"),
    (",,hdc:tape", "unknown deprecated type: near `tape'"),
    ("access=rx,format=zz,vdev=xvda,target=/a", "unknown value for access: near `rx'"),
]


@pytest.mark.parametrize("spec, message", DISK_ERRORS, ids=[s for s, _ in DISK_ERRORS])
def test_bad_disk_strings_are_refused_naming_the_bad_part(spec, message):
    with pytest.raises(DevSpecError) as caught:
        parse_disk(spec)
    assert isinstance(caught.value, ValueError)
    assert caught.value.messages[0] == (
        f"config parsing error in disk specification: {message} in `{spec}'")


def test_every_complaint_is_kept_in_order():
    with pytest.raises(DevSpecError) as caught:
        parse_disk("access=rx,format=zz,vdev=xvda,target=/a")
    assert [m.split(": ", 2)[1] for m in caught.value.messages] == [
        "unknown value for access", "unknown value for format"]


def test_several_strings_make_one_disk_as_for_block_attach():
    assert parse_disk(["/img/a.raw", "raw", "xvda", "r"]) == parse_disk("/img/a.raw,raw,xvda,r")
    assert parse_disk(["vdev=xvda", "target=/a,b"]).pdev_path == "/a,b"
    with pytest.raises(DevSpecError, match="no vdev specified in `raw'"):
        parse_disk(["/img/a.raw", "raw"])


def test_a_disk_prints_as_libxl_prints_it():
    assert parse_disk("/img/a.raw,raw,xvda,rw").to_json() == {
        "pdev_path": "/img/a.raw", "vdev": "xvda", "format": "raw", "readwrite": 1}
    assert parse_disk(",,hdc:cdrom,r").to_json() == {
        "pdev_path": "", "vdev": "hdc", "format": "empty", "removable": 1, "is_cdrom": 1}
    assert parse_disk("backend=dom1,discard,direct-io-safe,vdev=xvda,target=/a").to_json() == {
        "backend_domname": "dom1", "pdev_path": "/a", "vdev": "xvda", "format": "raw",
        "readwrite": 1, "direct_io_safe": True, "discard_enable": "True"}


def test_a_disk_is_frozen_and_knows_its_devid():
    disk = parse_disk("/img/a.raw,raw,xvdb,ro")
    assert disk.devid == 51728 and disk.read_only
    with pytest.raises(dataclasses.FrozenInstanceError):
        disk.vdev = "xvdc"
    assert isinstance(disk, DiskSpec)


# ---------------------------------------------------------------------------
# virtual disk numbers

VDEVS = [
    ("xvda", 51712), ("xvdb", 51728), ("xvda1", 51713), ("xvdp", 51952), ("xvdp15", 51967),
    ("xvda16", (1 << 28) | 16), ("xvdq", (1 << 28) | (16 << 8)),
    ("xvdz", (1 << 28) | (25 << 8)), ("xvdaa", (1 << 28) | (26 << 8)),
    ("xvdq255", (1 << 28) | (16 << 8) | 255),
    ("hda", 768), ("hdb", 832), ("hdc", 5632), ("hdd", 5696), ("hda1", 769), ("hdb63", 895),
    ("sda", 2048), ("sdb", 2064), ("sda1", 2049), ("sdp15", 2303),
    ("d0p1", 51713), ("d1p2", 51730), ("d16p0", (1 << 28) | (16 << 8)), ("d0p255", (1 << 28) | 255),
    ("51712", 51712), ("0x10", 16), ("010", 8),
    # libxl's own oddities: no letter counts as disk -1, which "hd" survives,
    # and an empty name is the number 0
    ("hd", 832), ("", 0), ("xvda+1", 51713),
]
BAD_VDEVS = ["xvd", "sd", "xvda0", "xvda01", "xvda256", "hde", "hda64", "sdq", "sda16", "xvdA",
             "abc", "xvda1x", "d0p256", "d1048576p0", "d-1p0", "-1", "2147483648", "vda"]


@pytest.mark.parametrize("vdev, devid", VDEVS, ids=[v or "empty" for v, _ in VDEVS])
def test_vdev_numbers_are_libxls(vdev, devid):
    assert vdev_to_devid(vdev) == devid


@pytest.mark.parametrize("vdev", BAD_VDEVS)
def test_bad_vdevs_are_refused(vdev):
    with pytest.raises(ValueError, match="Invalid or unsupported virtual disk identifier"):
        vdev_to_devid(vdev)


# ---------------------------------------------------------------------------
# vif rates

RATES = [
    ("10Mb/s@20ms", 25000, 20000),
    ("100MB/s", 5_000_000, 50000),
    ("1GB/s", 50_000_000, 50000),
    ("10KB/s", 500, 50000),
    ("10Kb/s", 62, 50000),            # 1250 bytes a second, 62.5 per 50 ms
    ("8b/s@1s", 1, 1_000_000),
    ("1B/s@1us", 0, 1),
    ("10MB/s@20", 200_000_000, 20_000_000),   # no unit: seconds
    ("10MB/s@20m", 200_000, 20000),
    ("10MB/s@500u", 5000, 500),
    ("10MB/s@500us", 5000, 500),
    ("010MB/s", 400_000, 50000),      # base 0: a leading zero is octal
    ("10MB/s@020ms", 160_000, 16000),
    ("4294967295B/s", 214_748_364, 50000),
]
RATE_ERRORS = [
    ("", "no rate specified in `'"),
    ("@20ms", "no rate specified in `@20ms'"),
    ("x", "invalid rate in `x'"),
    ("10kB/s", "invalid rate in `10kB/s'"),
    ("10 MB/s", "invalid rate in `10 MB/s'"),
    ("10MB", "invalid rate in `10MB'"),
    ("0B/s", "rate overflow in `0B/s'"),
    ("08MB/s", "rate overflow in `08MB/s'"),
    ("4294967296B/s", "rate overflow in `4294967296B/s'"),
    ("10MB/s@", "invalid replenishment interval in `'"),
    ("10MB/s@20ms@1", "invalid replenishment interval in `20ms@1'"),
    ("10MB/s@20h", "invalid replenishment interval in `20h'"),
    ("10MB/s@0", "replenishment interval overflow in `0'"),
    ("10MB/s@4295s", "replenishment interval overflow in `4295s'"),
    ("4294967295GB/s@1s", "rate overflow in `4294967295GB/s@1s'"),
]


@pytest.mark.parametrize("rate, per_interval, usecs", RATES, ids=[r for r, _, _ in RATES])
def test_rates_are_libxlutils(rate, per_interval, usecs):
    assert parse_rate(rate) == (per_interval, usecs)
    nic = parse_vif(f"rate={rate}")
    assert (nic.rate_bytes_per_interval, nic.rate_interval_usecs) == (per_interval, usecs)


@pytest.mark.parametrize("rate, message", RATE_ERRORS, ids=[r or "empty" for r, _ in RATE_ERRORS])
def test_bad_rates_are_fatal(rate, message):
    with pytest.raises(DevSpecError) as caught:
        parse_vif(f"bridge=xenbr1,rate={rate}")
    assert str(caught.value) == f"config parsing error in vif: {message}"


# ---------------------------------------------------------------------------
# vifs

VIFS = [
    ("", dict(bridge="xenbr0", script="/etc/xen/scripts/vif-bridge", nictype="vif",
              model="rtl8139", mtu=1500, ip=None, rate_bytes_per_interval=0, trusted=True), ()),
    ("bridge=xenbr1,mac=00:16:3e:01:02:03", dict(bridge="xenbr1", mac="00:16:3e:01:02:03"), ()),
    ("mac=00:16:3E:0A:0B:0C", dict(mac="00:16:3e:0a:0b:0c"), ()),
    ("ip=10.0.0.1 10.0.0.2, vifname=web0, gatewaydev=eth0",
     dict(ip="10.0.0.1 10.0.0.2", ips=("10.0.0.1", "10.0.0.2"), ifname="web0", gatewaydev="eth0"), ()),
    ("backend=drv, script=vif-route, model=e1000, type=ioemu",
     dict(backend_domname="drv", script="vif-route", model="e1000", nictype="vif_ioemu"), ()),
    ("type=vif", dict(nictype="vif"), ()),
    ("devid=3,mtu=9000", dict(devid=3, mtu=9000), ()),
    ("mtu=0", dict(mtu=1500), ()),
    ("untrusted", dict(trusted=False), ()),
    ("untrusted,trusted", dict(trusted=True), ()),
    ("forwarddev=eth1,colo_checkpoint_port=9",
     dict(colo=(("coloft_forwarddev", "eth1"), ("colo_checkpoint_port", "9"))), ()),
    # a token keeps its trailing blanks, as xl keeps them
    ("bridge=xenbr1 , mac=00:16:3e:01:02:03", dict(bridge="xenbr1 "), ()),
    (",,bridge=xenbr2,,", dict(bridge="xenbr2"), ()),
    # what xl only warns about
    ("foo=bar,bridge=xenbr1", dict(bridge="xenbr1"), ("unrecognized argument `foo=bar'",)),
    ("bridge=b,  ", dict(bridge="b"), ("unrecognized argument `'",)),
    ("trusted=1", dict(trusted=True), ("unrecognized argument `trusted=1'",)),
    ("type=pv", dict(nictype="vif"), ("Invalid parameter `type'.",)),
    ("netdev=eth0", dict(gatewaydev="eth0"),
     ("the netdev parameter is deprecated, please use gatewaydev instead",)),
    ("accel=x", {}, ("the accel parameter for vifs is currently not supported",)),
    # a bad MAC keeps the bytes read before the bad one
    ("mac=00:16:3e:zz", dict(mac="00:16:3e:00:00:00"), ("Invalid parameter `mac'.",)),
    ("mac=00:16:3e:01:02:100", dict(mac="00:16:3e:01:02:00"), ("Invalid parameter `mac'.",)),
    # and a short one reads on into the next token, as xl's strtoul does
    ("mac=00:16:3e,bridge=x", dict(mac="00:16:3e:0b:00:00", bridge="x"), ("Invalid parameter `mac'.",)),
    # strtoul(16) takes a 0x, and xl keeps only 32 bits of it
    ("mac=0x10:1:2:3:4:5", dict(mac="10:01:02:03:04:05"), ()),
    ("mac=100000000-1-2-3-4-5", dict(mac="00:01:02:03:04:05"), ()),
]


@pytest.mark.parametrize("spec, fields, warnings", VIFS, ids=[s or "empty" for s, _, _ in VIFS])
def test_vif_strings_read_as_xl_reads_them(spec, fields, warnings):
    nic = parse_vif(spec, devid=0, domain="web")
    for name, value in fields.items():
        assert getattr(nic, name) == value, name
    assert nic.warnings == warnings


VIF_ERRORS = [
    ("devid=x", 'failed to convert "x" to number'),
    ("mtu=", 'failed to convert "" to number'),
    ("mtu=-1", 'failed to convert "-1" to number'),
    ("devid=99999999999999999999", 'failed to convert "99999999999999999999" to number'),
    ("rate=1", "config parsing error in vif: invalid rate in `1'"),
]


@pytest.mark.parametrize("spec, message", VIF_ERRORS, ids=[s for s, _ in VIF_ERRORS])
def test_what_xl_exits_on_is_an_error(spec, message):
    with pytest.raises(DevSpecError) as caught:
        parse_vif(spec)
    assert str(caught.value) == message


def test_a_missing_mac_is_xens_oui_and_the_same_every_time():
    first = parse_vif("bridge=xenbr0", devid=1, domain="web")
    assert first == parse_vif("bridge=xenbr0", devid=1, domain="web")
    octets = [int(x, 16) for x in first.mac.split(":")]
    assert octets[:3] == [0x00, 0x16, 0x3E] and octets[3] < 0x80
    assert parse_vif("", devid=2, domain="web").mac != first.mac
    assert parse_vif("", devid=1, domain="db").mac != first.mac
    # an all-zero MAC is no MAC to libxl
    assert parse_vif("mac=00:00:00:00:00:00", devid=1, domain="web").mac == first.mac
    # the spec's devid is the one the MAC is drawn for
    assert parse_vif("devid=2", devid=0, domain="web").mac == parse_vif("", devid=2, domain="web").mac


def test_a_vif_prints_as_libxl_prints_it():
    nic = parse_vif("mac=00:16:3e:0a:00:ff,ip=1.2.3.4,rate=10Mb/s@20ms,backend=dom0,"
                    "gatewaydev=eth0,vifname=vif-x", devid=0)
    assert list(nic.to_json().items()) == [
        ("backend_domname", "dom0"), ("devid", 0), ("mtu", 1500), ("model", "rtl8139"),
        ("mac", "00:16:3e:0a:00:ff"), ("ip", "1.2.3.4"), ("bridge", "xenbr0"),
        ("ifname", "vif-x"), ("script", "/etc/xen/scripts/vif-bridge"), ("nictype", "vif"),
        ("rate_bytes_per_interval", 25000), ("rate_interval_usecs", 20000),
        ("gatewaydev", "eth0"), ("trusted", "True")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        nic.bridge = "xenbr1"


# ---------------------------------------------------------------------------
# vTPMs

UUID = "0123abcd-0000-1111-2222-333344445555"
VTPMS = [
    ("backend=vtpmmgr", dict(backend_domname="vtpmmgr")),
    (f"backend=vtpmmgr, uuid={UUID.upper()}", dict(backend_domname="vtpmmgr", uuid=UUID)),
    (f"uuid={UUID},backend=dom1,,", dict(backend_domname="dom1", uuid=UUID)),
    ("backend=a,backend=b", dict(backend_domname="b")),
    ("backend=", dict(backend_domname="")),
    # a token without '=' ends the reading, quietly, in xl too
    ("backend=a,garbage,uuid=bad,colour=red", dict(backend_domname="a")),
]
VTPM_ERRORS = [
    ("", "vtpm spec missing required backend field!"),
    (f"uuid={UUID}", "vtpm spec missing required backend field!"),
    ("garbage,backend=a", "vtpm spec missing required backend field!"),
    ("backend=a,colour=red", "Unknown string `colour' in vtpm spec"),
    ("backend=a,devid=1", "Unknown string `devid' in vtpm spec"),
    ("backend=a,uuid=bad", "Failed to parse vtpm UUID: bad"),
    (f"backend=a,uuid={UUID} ", f"Failed to parse vtpm UUID: {UUID} "),
    ("backend=a,uuid=0123abcd00000-1111-2222-333344445555",
     "Failed to parse vtpm UUID: 0123abcd00000-1111-2222-333344445555"),
]


@pytest.mark.parametrize("spec, fields", VTPMS, ids=[s for s, _ in VTPMS])
def test_vtpm_strings_read_as_xl_reads_them(spec, fields):
    vtpm = parse_vtpm(spec, devid=0, domain="web")
    for name, value in fields.items():
        assert getattr(vtpm, name) == value, name


@pytest.mark.parametrize("spec, message", VTPM_ERRORS, ids=[s or "empty" for s, _ in VTPM_ERRORS])
def test_bad_vtpm_strings_are_refused(spec, message):
    with pytest.raises(DevSpecError) as caught:
        parse_vtpm(spec)
    assert str(caught.value) == message


def test_a_missing_vtpm_uuid_is_made_the_same_every_time():
    made = parse_vtpm("backend=vtpmmgr", devid=0, domain="web")
    assert made == parse_vtpm("backend=vtpmmgr", devid=0, domain="web")
    assert parse_uuid(made.uuid) == made.uuid and made.uuid[14] == "4"
    assert parse_vtpm("backend=vtpmmgr", devid=1, domain="web").uuid != made.uuid
    nil = "00000000-0000-0000-0000-000000000000"
    assert parse_vtpm(f"backend=vtpmmgr,uuid={nil}", devid=0, domain="web").uuid == made.uuid
    assert parse_vtpm(f"backend=vtpmmgr,uuid={UUID}", devid=2).to_json() == {
        "backend_domname": "vtpmmgr", "devid": 2, "uuid": UUID}


# ---------------------------------------------------------------------------
# against libxlutil and libxenlight themselves

DIFF_DISKS = [row[0] for row in DISKS] + [row[0] for row in DISK_ERRORS] + [
    "/img/a.raw,raw,xvda,rw,", "phy:/dev/x", "raw:/x,qcow2,xvda", "nbd:host:1234,xvda",
    "target=", "vdev=,target=/x", "xvda, target=/x", "/x,raw,xvda:cdrom:disk",
    "/x,raw,xvda ,rw", "/x, raw ,xvda", "format=,vdev=xvda,target=/x", "a=,/x,raw,xvda",
    "/img/a.raw,raw,xvda,rw,=", "= ", "Foo:/x,xvda", "foo:x,raw,xvda",
]
DIFF_RATES = [r for r, _, _ in RATES] + [r for r, _ in RATE_ERRORS] + [
    "1000000000000MB/s", "10MB/s ", "10MB/s@20ss", "10MB/s@20mus", "10M/s", "10MBs"]
DIFF_UUIDS = [UUID, UUID.upper(), UUID[:-1], UUID + "5", UUID + " ", "", "g" + UUID[1:],
              "00000000-0000-0000-0000-000000000000", UUID.replace("-", "")]


def generated_disk_specs(count: int) -> list[str]:
    """Strings glued from the grammar's own pieces, for the corners no one
    would think to write down."""
    pieces = ["/img/a.raw", "phy:/dev/sdb", "file:", "raw:", "tap:", "nbd:", "foo:", "x:y",
              "raw", "qcow2", "bogus", "", " ", "xvda", "hdc:cdrom", "hdc:tape", "r", "rw", "x",
              "format=raw", "format=zz", "vdev=xvdb", "access=ro", "devtype=cdrom",
              "devtype=cd", "cdrom", "backend=d1", "backendtype=phy", "script=s",
              "discard", "no-discard", "direct-io-safe", "colo-port=7", "target=/a,b",
              "xyz=abc", "=", "A=b", "a b", "trusted"]
    rng = random.Random(20240617)
    specs = []
    for _ in range(count):
        parts = [rng.choice(pieces) for _ in range(rng.randint(0, 5))]
        spec = "".join(p + rng.choice([",", ",", ", ", " ,", ",,"]) for p in parts)
        specs.append(spec.rstrip(",") if rng.random() < 0.5 else spec)
    return specs


def build_probe() -> Path:
    gcc, pkg_config, flags = libxl_toolchain()
    BUILD.mkdir(exist_ok=True)
    exe = BUILD / f"devspec_probe.{os.getpid()}"
    # libxl__device_disk_dev_number is only reachable in the static
    # libxenlight; without it the vdev numbers go unchecked here.
    deps = subprocess.run([pkg_config, "--static", "--libs", "xenlight"],
                          capture_output=True, text=True).stdout.split()
    deps = [d for d in dict.fromkeys(deps) if d != "-lxenlight"]
    static = subprocess.run(
        [gcc, "-Wall", "-Werror", "-DDEV_NUMBER", "-o", str(exe), str(PROBE),
         "-Wl,-Bstatic", "-lxlutil", "-lxenlight", "-Wl,-Bdynamic", *deps,
         "-l:libyajl.so.2", "-luuid"], capture_output=True)
    if static.returncode != 0:
        subprocess.run([gcc, "-Wall", "-Werror", "-o", str(exe), str(PROBE),
                        *flags], check=True, capture_output=True)
    return exe


@pytest.fixture(scope="module")
def libxl_answers():
    exe = build_probe()
    requests = ([("disk", s) for s in DIFF_DISKS + generated_disk_specs(1500)]
                + [("vdev", v) for v, _ in VDEVS] + [("vdev", v) for v in BAD_VDEVS]
                + [("rate", r) for r in DIFF_RATES] + [("uuid", u) for u in DIFF_UUIDS])
    try:
        out = subprocess.run([str(exe)], input="".join(f"{k}\t{t}\n" for k, t in requests),
                             capture_output=True, text=True, check=True).stdout
    finally:
        exe.unlink()
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == len(requests)
    return list(zip(requests, answers))


def ours_as_reported(parse, text):
    """Our answer in the probe's terms: success or not, and the report as
    libxlutil writes it for a config named `probe'."""
    try:
        return True, "", parse(text)
    except DevSpecError as e:
        return False, "".join(f"probe: {m}\n" for m in e.messages), None


def test_disks_parse_as_libxlutil_parses_them(libxl_answers):
    checked = 0
    for (kind, spec), theirs in libxl_answers:
        if kind != "disk":
            continue
        ok, report, disk = ours_as_reported(parse_disk, spec)
        assert (ok, report) == (theirs["rc"] == 0, theirs["report"]), spec
        if ok:
            assert disk.to_json() == theirs["json"], spec
        checked += 1
    assert checked > 1500


def test_vdev_numbers_are_libxenlights(libxl_answers):
    vdevs = [(text, theirs["devid"]) for (kind, text), theirs in libxl_answers if kind == "vdev"]
    if vdevs[0][1] is None:
        pytest.skip("libxl__device_disk_dev_number needs the static libxenlight")
    for vdev, theirs in vdevs:
        if theirs < 0:
            with pytest.raises(ValueError):
                vdev_to_devid(vdev)
        else:
            assert vdev_to_devid(vdev) == theirs, vdev


def test_rates_parse_as_libxlutil_parses_them(libxl_answers):
    for (kind, rate), theirs in libxl_answers:
        if kind != "rate":
            continue
        ok, report, parsed = ours_as_reported(parse_rate, rate)
        assert (ok, report) == (theirs["rc"] == 0, theirs["report"]), rate
        if ok:
            assert parsed == (theirs["bytes"], theirs["usecs"]), rate


def test_uuids_parse_as_libxl_parses_them(libxl_answers):
    for (kind, text), theirs in libxl_answers:
        if kind != "uuid":
            continue
        if theirs["rc"] == 0:
            assert parse_uuid(text) == theirs["uuid"], text
        else:
            with pytest.raises(ValueError):
                parse_uuid(text)
