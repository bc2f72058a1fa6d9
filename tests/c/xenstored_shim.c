/*
 * Preloaded into Xen 4.17's C xenstored so that it serves its UNIX socket on
 * a machine with no hypervisor (no /dev/xen, no /proc/xen).  The daemon then
 * answers requests exactly as it would on a real dom0, except where an answer
 * depends on which domains exist: here only domain 0 does.
 *
 * What xenstored needs at start-up, and what it gets instead:
 *   - xc_interface_open / xengnttab_open / xenevtchn_open fail without the
 *     Xen devices, and xenstored gives up when they do: when the library
 *     cannot open a handle, hand out the address of a private placeholder and
 *     answer every call made on such a placeholder here.
 *   - The event channel fd goes into xenstored's poll set: an empty pipe
 *     whose write end stays open never becomes readable, so no event arrives.
 *   - Event channel ports are only remembered and passed back to us, so any
 *     small positive numbers do.
 *   - xc_domain_getinfo decides which domains exist (for permissions naming a
 *     domain, IS_DOMAIN_INTRODUCED, domain clean-up): dom0 only, running.
 *   - dom0's own connection is set up from /proc/xen/xsd_port (a decimal
 *     port) and /proc/xen/xsd_kva (the page holding its ring, mmap()ed
 *     shared): an in-memory file with a port number, and a zeroed in-memory
 *     page that nobody else writes to, so that connection stays silent.
 *   - Raising RLIMIT_NOFILE above the hard limit needs privilege a test run
 *     may not have: settle for the hard limit rather than fail.
 *
 * Build: gcc -shared -fPIC -o xenstored_shim.so xenstored_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define SHIM_XSD_PORT 5          /* dom0's xenstore event channel, as read */
#define SHIM_VIRQ_PORT 3         /* what binding VIRQ_DOM_EXC returns */
#define SHIM_INTERDOMAIN_PORT 4  /* what binding any remote port returns */

/* The library types are opaque; only the addresses of these matter. */
static long placeholder_xc[8];
static long placeholder_evtchn[8];
static long placeholder_gnttab[8];

#define FAKE_XC ((xc_interface *)placeholder_xc)
#define FAKE_EVTCHN ((xenevtchn_handle *)placeholder_evtchn)
#define FAKE_GNTTAB ((xengnttab_handle *)placeholder_gnttab)

static int quiet_pipe[2] = { -1, -1 };

/* The definition this library hides, looked up once per caller. */
static void *next_definition(const char *name)
{
    void *sym = dlsym(RTLD_NEXT, name);

    if (!sym) {
        fprintf(stderr, "xenstored_shim: no definition of %s behind us\n", name);
        abort();
    }
    return sym;
}

/* Hand the call on to the library: the header's prototype gives the type. */
#define CALL_NEXT(name, ...)                                           \
    do {                                                               \
        static __typeof__(name) *next_;                                \
        if (!next_)                                                    \
            next_ = (__typeof__(name) *)next_definition(#name);        \
        return next_(__VA_ARGS__);                                     \
    } while (0)

/* ------------------------------------------------------------ resources */
int setrlimit(__rlimit_resource_t resource, const struct rlimit *want)
{
    static __typeof__(setrlimit) *next;
    struct rlimit hard;
    int saved;

    if (!next)
        next = (__typeof__(setrlimit) *)next_definition("setrlimit");
    if (next(resource, want) == 0)
        return 0;
    saved = errno;
    if (resource != RLIMIT_NOFILE || saved != EPERM || getrlimit(resource, &hard) != 0) {
        errno = saved;
        return -1;
    }
    hard.rlim_cur = hard.rlim_max;
    return next(resource, &hard);
}

/* ---------------------------------------------------------------- files */
static int memory_file(const char *label, const void *content, size_t len, size_t size)
{
    int fd = memfd_create(label, MFD_CLOEXEC);

    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)size) != 0
        || (len && pwrite(fd, content, len, 0) != (ssize_t)len)) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Whether path is one of the /proc/xen files; if so, *fd is the answer. */
static int xen_proc_file(const char *path, int *fd)
{
    if (strcmp(path, "/proc/xen/xsd_port") == 0) {
        char text[16];
        int n = snprintf(text, sizeof(text), "%d", SHIM_XSD_PORT);
        *fd = memory_file("xsd_port", text, (size_t)n, (size_t)n);
        return 1;
    }
    if (strcmp(path, "/proc/xen/xsd_kva") == 0) {
        *fd = memory_file("xsd_kva", NULL, 0, (size_t)getpagesize());
        return 1;
    }
    return 0;
}

/* open(2) reads a mode argument only for these. */
static int wants_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/*
 * Every other open goes through untouched, errno included: xenstored 4.17
 * answers some malformed requests with whatever errno last held, so the
 * shim must not leave its own mark there.
 */
int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    int fd;

    if (wants_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (xen_proc_file(path, &fd))
        return fd;
    CALL_NEXT(open, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    int fd;

    if (wants_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (xen_proc_file(path, &fd))
        return fd;
    CALL_NEXT(open64, path, flags, mode);
}

/* -------------------------------------------------------------- xenctrl */
xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger,
                                unsigned flags)
{
    static __typeof__(xc_interface_open) *next;
    xc_interface *xch;

    if (!next)
        next = (__typeof__(xc_interface_open) *)next_definition("xc_interface_open");
    xch = next(logger, dombuild_logger, flags);
    return xch ? xch : FAKE_XC;
}

int xc_interface_close(xc_interface *xch)
{
    if (xch == FAKE_XC)
        return 0;
    CALL_NEXT(xc_interface_close, xch);
}

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid, unsigned int max_doms,
                      xc_dominfo_t *info)
{
    if (xch != FAKE_XC)
        CALL_NEXT(xc_domain_getinfo, xch, first_domid, max_doms, info);
    /* Domains are listed from first_domid upwards; dom0 is the only one. */
    if (first_domid != 0 || max_doms == 0)
        return 0;
    memset(info, 0, sizeof(*info));
    info->domid = 0;
    info->running = 1;
    info->max_vcpu_id = 0;
    info->nr_online_vcpus = 1;
    return 1;
}

/* ------------------------------------------------------- event channels */
xenevtchn_handle *xenevtchn_open(xentoollog_logger *logger, unsigned open_flags)
{
    static __typeof__(xenevtchn_open) *next;
    xenevtchn_handle *xce;

    if (!next)
        next = (__typeof__(xenevtchn_open) *)next_definition("xenevtchn_open");
    xce = next(logger, open_flags);
    return xce ? xce : FAKE_EVTCHN;
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
    if (xce != FAKE_EVTCHN)
        CALL_NEXT(xenevtchn_fd, xce);
    if (quiet_pipe[0] < 0 && pipe2(quiet_pipe, O_CLOEXEC) != 0)
        return -1;
    return quiet_pipe[0];
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
{
    if (xce == FAKE_EVTCHN)
        return SHIM_VIRQ_PORT;
    CALL_NEXT(xenevtchn_bind_virq, xce, virq);
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    if (xce == FAKE_EVTCHN)
        return SHIM_INTERDOMAIN_PORT;
    CALL_NEXT(xenevtchn_bind_interdomain, xce, domid, remote_port);
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
    if (xce == FAKE_EVTCHN)
        return 0;
    CALL_NEXT(xenevtchn_unbind, xce, port);
}

int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
    if (xce == FAKE_EVTCHN)
        return 0;
    CALL_NEXT(xenevtchn_notify, xce, port);
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
    if (xce == FAKE_EVTCHN)
        return 0;
    CALL_NEXT(xenevtchn_unmask, xce, port);
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    if (xce == FAKE_EVTCHN) {
        /* Only reached if poll lied: nothing is ever pending. */
        errno = EAGAIN;
        return -1;
    }
    CALL_NEXT(xenevtchn_pending, xce);
}

/* ---------------------------------------------------------- grant tables */
xengnttab_handle *xengnttab_open(xentoollog_logger *logger, unsigned open_flags)
{
    static __typeof__(xengnttab_open) *next;
    xengnttab_handle *xgt;

    if (!next)
        next = (__typeof__(xengnttab_open) *)next_definition("xengnttab_open");
    xgt = next(logger, open_flags);
    return xgt ? xgt : FAKE_GNTTAB;
}

int xengnttab_close(xengnttab_handle *xgt)
{
    if (xgt == FAKE_GNTTAB)
        return 0;
    CALL_NEXT(xengnttab_close, xgt);
}

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
    if (xgt == FAKE_GNTTAB)
        return 0;
    CALL_NEXT(xengnttab_set_max_grants, xgt, nr_grants);
}

void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid, uint32_t ref, int prot)
{
    if (xgt == FAKE_GNTTAB) {
        /* No other domain exists, so there is no page of theirs to map. */
        errno = ESRCH;
        return NULL;
    }
    CALL_NEXT(xengnttab_map_grant_ref, xgt, domid, ref, prot);
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
    if (xgt == FAKE_GNTTAB)
        return 0;
    CALL_NEXT(xengnttab_unmap, xgt, start_address, count);
}
