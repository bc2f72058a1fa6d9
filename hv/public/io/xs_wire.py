"""xen/include/public/io/xs_wire.h: xenstore's messages, its error names,
and the page a domain shares with xenstored (two byte rings of raw message
bytes with free-running indices)."""

from hv.public.abi import char, uint32_t, xenstruct

XS_CONTROL = 0
XS_DEBUG = 0            # the old name of XS_CONTROL
XS_DIRECTORY = 1
XS_READ = 2
XS_GET_PERMS = 3
XS_WATCH = 4
XS_UNWATCH = 5
XS_TRANSACTION_START = 6
XS_TRANSACTION_END = 7
XS_INTRODUCE = 8
XS_RELEASE = 9
XS_GET_DOMAIN_PATH = 10
XS_WRITE = 11
XS_MKDIR = 12
XS_RM = 13
XS_SET_PERMS = 14
XS_WATCH_EVENT = 15
XS_ERROR = 16
XS_IS_DOMAIN_INTRODUCED = 17
XS_RESUME = 18
XS_SET_TARGET = 19
# 20 was XS_RESTRICT, withdrawn.
XS_RESET_WATCHES = 21
XS_DIRECTORY_PART = 22
XS_TYPE_COUNT = 23
XS_INVALID = 0xFFFF

XS_WATCH_PATH = 0
XS_WATCH_TOKEN = 1

XS_WRITE_NONE = "NONE"
XS_WRITE_CREATE = "CREATE"
XS_WRITE_CREATE_EXCL = "CREATE|EXCL"

XSD_TYPE_NAMES = {
    XS_CONTROL: "CONTROL", XS_DIRECTORY: "DIRECTORY", XS_READ: "READ",
    XS_GET_PERMS: "GET_PERMS", XS_WATCH: "WATCH", XS_UNWATCH: "UNWATCH",
    XS_TRANSACTION_START: "TRANSACTION_START", XS_TRANSACTION_END: "TRANSACTION_END",
    XS_INTRODUCE: "INTRODUCE", XS_RELEASE: "RELEASE", XS_GET_DOMAIN_PATH: "GET_DOMAIN_PATH",
    XS_WRITE: "WRITE", XS_MKDIR: "MKDIR", XS_RM: "RM", XS_SET_PERMS: "SET_PERMS",
    XS_WATCH_EVENT: "WATCH_EVENT", XS_ERROR: "ERROR",
    XS_IS_DOMAIN_INTRODUCED: "IS_DOMAIN_INTRODUCED", XS_RESUME: "RESUME",
    XS_SET_TARGET: "SET_TARGET", XS_RESET_WATCHES: "RESET_WATCHES",
    XS_DIRECTORY_PART: "DIRECTORY_PART",
}

# xsd_errors[], in xs_wire.h's order: the names errors travel as.
XSD_ERRORS = (
    (22, "EINVAL"), (13, "EACCES"), (17, "EEXIST"), (21, "EISDIR"), (2, "ENOENT"),
    (12, "ENOMEM"), (28, "ENOSPC"), (5, "EIO"), (39, "ENOTEMPTY"), (38, "ENOSYS"),
    (30, "EROFS"), (16, "EBUSY"), (11, "EAGAIN"), (106, "EISCONN"), (7, "E2BIG"),
    (1, "EPERM"),
)

XENSTORE_RING_SIZE = 1024
XENSTORE_PAYLOAD_MAX = 4096
XENSTORE_ABS_PATH_MAX = 3072
XENSTORE_REL_PATH_MAX = 2048

XENSTORE_SERVER_FEATURE_RECONNECTION = 1
XENSTORE_SERVER_FEATURE_ERROR = 2
XENSTORE_CONNECTED = 0
XENSTORE_RECONNECT = 1
XENSTORE_ERROR_NONE = 0
XENSTORE_ERROR_COMM = 1
XENSTORE_ERROR_RINGIDX = 2
XENSTORE_ERROR_PROTO = 3


@xenstruct
class XsdSockmsg:
    type: uint32_t
    req_id: uint32_t
    tx_id: uint32_t
    len: uint32_t


@xenstruct
class XenstoreDomainInterface:
    req: char[XENSTORE_RING_SIZE]
    rsp: char[XENSTORE_RING_SIZE]
    req_cons: uint32_t
    req_prod: uint32_t
    rsp_cons: uint32_t
    rsp_prod: uint32_t
    server_features: uint32_t
    connection: uint32_t
    error: uint32_t
