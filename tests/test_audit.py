"""The audit must notice when the machine is broken: each test breaks one
invariant by hand and checks the audit names it."""

import pytest

from hv.public.event_channel import (
    EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EvtchnAllocUnbound,
    EvtchnBindInterdomain,
)
from hv.public.grant_table import (
    GNTMAP_host_map, GNTTABOP_map_grant_ref, GTF_writing, GnttabMapGrantRef,
)
from hv.public.xen import DOMID_SELF, HYPERVISOR_event_channel_op, HYPERVISOR_grant_table_op
from hv.guest.grant_table import GuestGrantTable
from hv.xen.audit import AuditError, assert_clean, audit
from hv.xen.event_channel import ECS_UNBOUND
from hv.xen.mm import DOMHEAP

from tests.conftest import hypercall


def problems_after(xen, breakage, repair):
    assert audit(xen) == []
    breakage()
    found = audit(xen)
    repair()
    assert audit(xen) == []
    return found


def test_a_sound_machine_audits_clean(xen, make_domu):
    make_domu(16)
    assert audit(xen) == []
    assert_clean(xen)


def test_a_frame_owned_twice_or_by_nobody(xen, make_domu):
    a, b = make_domu(16), make_domu(16)
    mfn = xen.p2m.lookup(a, 3)
    m2p = xen.frames.m2p

    found = problems_after(xen,
                           lambda: m2p.set(mfn, 1, 3, (b, DOMHEAP)),
                           lambda: m2p.set(mfn, 1, 3, (a, DOMHEAP)))
    assert any("tot_pages" in p for p in found)

    found = problems_after(xen, lambda: m2p.clear(mfn, 1), lambda: m2p.set(mfn, 1, 3, (a, DOMHEAP)))
    assert any("neither free nor owned" in p for p in found)


def test_a_reference_count_that_mappings_do_not_explain(xen, make_domu):
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 5)
    found = problems_after(xen, lambda: xen.frames.get_page(mfn, d), lambda: xen.frames.put_page(mfn))
    assert found == [f"mfn {mfn:#x}: count 2, mappings and tables account for 1"]


def test_a_p2m_that_disagrees_with_the_m2p(xen, make_domu):
    d = make_domu(16)
    mfn = xen.p2m.lookup(d, 7)
    found = problems_after(xen, lambda: d.p2m.set(7, 1, mfn + 1), lambda: d.p2m.set(7, 1, mfn))
    assert any("P2M" in p or "M2P" in p for p in found)


def test_an_interdomain_channel_with_no_partner(xen, make_domu):
    a, b = make_domu(16), make_domu(16)
    _, alloc = hypercall(xen, a, HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
                         EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=b.domid))
    _, bind = hypercall(xen, b, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                        EvtchnBindInterdomain(remote_dom=a.domid, remote_port=alloc.port))
    chn = a.evtchn.chans[alloc.port]

    def unpair():
        chn.state, chn.remote_domid = ECS_UNBOUND, b.domid

    def repair():
        chn.state = 3
    found = problems_after(xen, unpair, repair)
    assert found == [f"d{b.domid} port {bind.local_port} -> d{a.domid}:{alloc.port} is not paired back"]


def test_an_active_count_that_is_off(xen, make_domu):
    d = make_domu(16)
    found = problems_after(xen, lambda: setattr(d.evtchn, "active", d.evtchn.active + 1),
                           lambda: setattr(d.evtchn, "active", d.evtchn.active - 1))
    assert found == [f"d{d.domid}: 3 active ports counted, 2 found"]


def test_grant_flags_that_disagree_with_the_mappings(xen, make_domu):
    front, back = make_domu(16), make_domu(16)
    gt = GuestGrantTable(xen, front.vcpus[0])
    ref = gt.grant_foreign_access(back.domid, xen.p2m.lookup(front, 9), readonly=False)
    _, (m,) = hypercall(xen, back, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref,
                        (GnttabMapGrantRef(host_addr=0x2000, flags=GNTMAP_host_map, ref=ref,
                                           dom=front.domid),))
    assert m.status == 0
    table = front.grant_table
    found = problems_after(xen, lambda: table.set_flags(ref, clear_bits=GTF_writing),
                           lambda: table.set_flags(ref, GTF_writing))
    assert found == [f"d{front.domid} ref {ref}: GTF_writing False, writable pins True"]
    act = table.active[ref]
    found = problems_after(xen, lambda: setattr(act, "pin", act.pin + 1),
                           lambda: setattr(act, "pin", act.pin - 1))
    assert any(f"d{front.domid} ref {ref}: pin" in p for p in found)


def test_assert_clean_raises_with_the_list(xen, make_domu):
    d = make_domu(16)
    d.tot_pages += 1
    with pytest.raises(AuditError, match=f"d{d.domid}: tot_pages"):
        assert_clean(xen)
    d.tot_pages -= 1


def test_a_shared_info_page_that_is_no_longer_xens(xen, make_domu):
    d = make_domu(16)
    mfn = d.shared_info_mfn
    m2p = xen.frames.m2p
    found = problems_after(xen, lambda: m2p.set(mfn, 1, None, (d, DOMHEAP)),
                           lambda: m2p.set(mfn, 1, None, (d, "xenheap")))
    assert f"d{d.domid}: its shared_info {mfn:#x} is not Xen's page shared with it" in found
