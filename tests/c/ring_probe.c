/* io/ring.h's macros driven through a fixed script, the page printed in
 * hex after each step: what the Python ring must leave in the same bytes.
 * Entries: a 16-byte request, an 8-byte response (a 16-byte slot). The
 * indices start near 2^32 so the script crosses the wrap. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
/* One thread plays both ends: ordering is program order. */
#define xen_mb()  __sync_synchronize()
#define xen_rmb() __sync_synchronize()
#define xen_wmb() __sync_synchronize()
#include <xen/io/ring.h>

struct probe_request { uint32_t id; uint8_t data[12]; };
struct probe_response { uint32_t id; int16_t status; uint16_t pad; };
DEFINE_RING_TYPES(probe, struct probe_request, struct probe_response);

static union { struct probe_sring s; unsigned char b[4096]; } page;

static void dump(const char *what, int flag)
{
    printf("%s %d %u ", what, flag, (unsigned)__RING_SIZE(&page.s, 4096));
    for (int i = 0; i < 64 + 16 * 8; i++)
        printf("%02x", page.b[i]);
    printf("\n");
}

int main(void)
{
    struct probe_front_ring front;
    struct probe_back_ring back;
    int notify, more;
    const RING_IDX start = 0xFFFFFFFD;

    memset(&page, 0, sizeof(page));
    SHARED_RING_INIT(&page.s);
    FRONT_RING_INIT(&front, &page.s, 4096);
    BACK_RING_INIT(&back, &page.s, 4096);
    /* Both ends agree to start near the wrap. */
    page.s.req_prod = page.s.rsp_prod = start;
    page.s.req_event = page.s.rsp_event = start + 1;
    front.req_prod_pvt = front.rsp_cons = start;
    back.rsp_prod_pvt = back.req_cons = start;
    dump("init", 0);

    for (uint32_t i = 0; i < 5; i++) {
        struct probe_request *r = RING_GET_REQUEST(&front, front.req_prod_pvt);
        r->id = 0x100 + i;
        memset(r->data, 0xa0 + i, sizeof(r->data));
        front.req_prod_pvt++;
        if (i == 1 || i == 4) {
            RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
            dump("push_requests", notify);
        }
    }
    more = RING_HAS_UNCONSUMED_REQUESTS(&back);
    dump("unconsumed_requests", more);
    for (int i = 0; i < 3; i++) {
        struct probe_request req = *RING_GET_REQUEST(&back, back.req_cons);
        back.req_cons++;
        struct probe_response *p = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
        p->id = req.id;
        p->status = (int16_t)-i;
        p->pad = 0;
        back.rsp_prod_pvt++;
    }
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
    dump("push_responses", notify);
    RING_FINAL_CHECK_FOR_RESPONSES(&front, more);
    dump("final_check_responses", more);
    front.rsp_cons += 3;
    RING_FINAL_CHECK_FOR_RESPONSES(&front, more);
    dump("final_check_responses", more);
    RING_FINAL_CHECK_FOR_REQUESTS(&back, more);
    dump("final_check_requests", more);
    back.req_cons += 2;
    RING_FINAL_CHECK_FOR_REQUESTS(&back, more);
    dump("final_check_requests", more);
    return 0;
}
